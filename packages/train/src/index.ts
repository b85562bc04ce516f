/** @dcae/train: training and adaptation of DC-AE models (see README.md). */
export const TRAIN_PACKAGE = '@dcae/train';
