// Model sources: the Hub's names, URLs and responses (platform-neutral), the model catalog and
// the `ModelFiles` abstraction. Downloads, the cache and local folders are in `@dcae/hub/node`.
export {
  checkHubRepo,
  checkHubRevision,
  DEFAULT_REVISION,
  formatHubRepoRef,
  isCommitHash,
  isHubRepoId,
  parseHubRepoId,
} from './repo-id.js';
export type { HubRepoRef } from './repo-id.js';
export { checkRepoFilename } from './filename.js';
export { DEFAULT_HUB_ENDPOINT, displayUrl, hubFileUrl, normalizeHubEndpoint, parseHubUrl } from './url.js';
export type { HubFileUrlOptions, HubUrlParts } from './url.js';
export { etagDigest, hubStatusError, normalizeEtag, parseHubFileMetadata } from './response.js';
export type { HubDigest, HubFileMetadata, HubRequestContext } from './response.js';
export { CONFIG_FILE, memoryModelFiles, WEIGHTS_FILE } from './model-files.js';
export type { ModelFiles } from './model-files.js';
export {
  AUTOENCODER_CATALOG,
  AUTOENCODER_MODELS,
  CATALOG_AUTOENCODER_FACTS,
  COMBINED_AUTOENCODER_PREFIX,
  knownModel,
  modelCatalog,
  TAESANA_RELEASE,
} from './catalog.js';
export type {
  CatalogAutoencoder,
  KnownModel,
  KnownModelKind,
  KnownModelSpec,
  ModelCatalog,
  ModelLayout,
} from './catalog.js';
