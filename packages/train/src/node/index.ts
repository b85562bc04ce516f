/** Node-only parts of @dcae/train (file system data sources, checkpoints, the training run). */
export { TRAIN_PACKAGE } from '../index.js';
export { listImages, openImageFolder, cropsToTensor } from './image-folder.js';
export type { ImageFolderOptions } from './image-folder.js';
export { openSampleFile, readSampleTensor } from './sample-file.js';
export { readPerceptualWeights } from './perceptual-weights.js';
export {
  checkpointTensors,
  DISCRIMINATOR_FILE,
  DISCRIMINATOR_OPTIMIZER_FILE,
  latestCheckpoint,
  loadTrainableModel,
  OPTIMIZER_FILE,
  readDiscriminatorState,
  readOptimizerState,
  readTrainerState,
  saveCheckpoint,
  TRAINER_STATE_FILE,
  WEIGHTS_FILE,
} from './checkpoint.js';
export type { CheckpointContents, LoadTrainableModelOptions, TrainableModel } from './checkpoint.js';
export { learnableKeys, trainRun } from './train.js';
export type { CreateRunner, TrainRunOptions, TrainRunResult } from './train.js';
