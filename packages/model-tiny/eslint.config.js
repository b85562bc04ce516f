import { dcaeLint, noOnnxruntime } from '../../tooling/eslint.config.js';

export default [...dcaeLint(import.meta.dirname), noOnnxruntime];
