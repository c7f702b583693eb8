export { MaintenanceRepository } from './maintenance.repository.ts';
export { defineMaintenanceJobs } from './maintenance.jobs.ts';
