import { describe, expect, it } from 'vitest';
import { className, searchClasses } from '../src/class-picker.js';
import { IMAGENET_CLASSES } from '../src/imagenet-classes.js';

describe('ImageNet class names', () => {
  it('lists the 1000 classes in label order', () => {
    expect(IMAGENET_CLASSES).toHaveLength(1000);
    // Spot checks against the standard ILSVRC 2012 label order.
    expect(IMAGENET_CLASSES[0]).toBe('tench, Tinca tinca');
    expect(IMAGENET_CLASSES[207]).toBe('golden retriever');
    expect(IMAGENET_CLASSES[279]).toBe('Arctic fox, white fox, Alopex lagopus');
    expect(IMAGENET_CLASSES[933]).toBe('cheeseburger');
    expect(IMAGENET_CLASSES[999]).toBe('toilet tissue, toilet paper, bathroom tissue');
    expect(IMAGENET_CLASSES.every((name) => name.trim() === name && name.length > 0)).toBe(true);
  });

  it('names a class by its first synonym, and says when an index is none', () => {
    expect(className(1)).toBe('goldfish');
    expect(className(1000)).toBe('not an ImageNet class');
    expect(className(-1)).toBe('not an ImageNet class');
  });
});

describe('searchClasses', () => {
  it('matches every word of the query, case-insensitively, in label order', () => {
    expect(searchClasses('Golden Retriever')).toEqual([207]);
    expect(searchClasses('crane')).toEqual([134, 517]);
    expect(searchClasses('retriever')).toEqual([205, 206, 207, 208, 209]);
  });

  it('puts an integer query first as an index, even outside 0–999 (the model refuses those)', () => {
    expect(searchClasses('999')[0]).toBe(999);
    expect(searchClasses(' 1000 ')).toEqual([1000]);
    expect(searchClasses('-3')).toEqual([-3]);
  });

  it('shows at most 50 matches and nothing for an empty query', () => {
    expect(searchClasses('a')).toHaveLength(50);
    expect(searchClasses('   ')).toEqual([]);
  });
});
