export { RegistryRepository, type ServerRow } from './registry.repository.ts';
export {
  RegistryService,
  toServerView,
  type Discoverer,
  type ServerRecord,
  type UrlGuard,
} from './registry.service.ts';
export { syncCatalogFile, toServerDefinition, type CatalogSyncReport } from './registry.catalog.ts';
