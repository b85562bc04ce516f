export { finalize, manifestLines, verify } from './finalize.js';
export type { FinalizeResult, VerifyReport } from './finalize.js';
export { IMAGE_EXTENSIONS, makePlan, readPlan, writePlan } from './plan.js';
export type { MakePlanOptions } from './plan.js';
export { hasImageColumn, inspectImageParquet, PARQUET_IMAGE_COLUMNS, readImageParquet } from './parquet.js';
export type { ImageParquetInfo, ImageParquetRow } from './parquet.js';
export { resolvePartition } from './partition.js';
export type { Partition, PartitionOptions } from './partition.js';
export {
  createShardProcessor,
  enqueuePlan,
  jobId,
  openQueue,
  QUEUE_NAME,
  queueCounts,
  queuePrefix,
  startWorker,
} from './queue.js';
export type {
  EnqueueOptions,
  ProcessorModel,
  QueueCounts,
  ShardJob,
  ShardJobData,
  ShardProcessor,
  StartWorkerOptions,
  WorkerEvent,
} from './queue.js';
export { runShards } from './run.js';
export type { RunShardsOptions } from './run.js';
export { openStore, S3Store, s3ClientFromEnv } from './s3-store.js';
export type { S3StoreOptions } from './s3-store.js';
export { processShard } from './shard.js';
export type { ShardContext, ShardModel, ShardResult } from './shard.js';
export { isS3Url, newAttemptId, PosixStore, sha256File } from './store.js';
export type { PublishResult, ShardStore, TempFile } from './store.js';
export { groupSamples, readTar, readTarFile, splitMemberName, writeTar } from './tar.js';
export type { TarEntry, TarSample, TarWriteResult } from './tar.js';
