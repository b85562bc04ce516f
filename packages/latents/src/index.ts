/** @dcae/latents: dataset-scale DC-AE latents (see README.md and docs/latents.md). */
export { encodeNpy, npyHeader, parseNpy } from './npy.js';
export type { NpyDType, ParsedNpy } from './npy.js';
export { sanitizeKey, shardName } from './keys.js';
export { latentContractMetadata } from './latent-contract.js';
export type { LatentContractInput } from './latent-contract.js';
export { centerCrop, PREPROCESSING_VERSION, resizeImage } from './preprocess.js';
export type { CropBox } from './preprocess.js';
export { PLAN_VERSION } from './plan-types.js';
export type {
  CommitRecord,
  CommittedFile,
  LatentDType,
  LatentLayout,
  LatentPlan,
  PlanFile,
  PlanKind,
  PlanShard,
  PlanShardSource,
  SkippedSample,
} from './plan-types.js';
