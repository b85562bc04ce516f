/** Node-only parts of @dcae/train (file system data sources and checkpoints). */
export { TRAIN_PACKAGE } from '../index.js';
