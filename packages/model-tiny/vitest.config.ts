import { defineProject } from 'vitest/config';
import { vitestProject } from '../../tooling/vitest.preset.js';

export default defineProject(vitestProject('model-tiny'));
