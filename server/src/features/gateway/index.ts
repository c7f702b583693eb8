export { Gateway, type GatewaySession } from './gateway.service.ts';
export { SessionDirectory } from './gateway.directory.ts';
export { isInternalHop, SessionForwarder } from './gateway.forward.ts';
export type { GatewayDeps, SessionContext } from './gateway.ports.ts';
export { mapUri, prefixName, splitName, unmapUri } from './aggregate.names.ts';
export { traceAdmission } from './gateway.tracing.ts';
