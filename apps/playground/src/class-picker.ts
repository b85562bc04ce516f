/**
 * A searchable, keyboard-driven picker of ImageNet classes (an ARIA combobox with a listbox): type
 * part of a name or an index, ↑/↓ to move, Enter to add, Escape to close, Backspace on an empty
 * field to remove the last class. Chosen classes show as chips (click one to remove it). A number
 * outside 0–999 can be added on purpose: the model then refuses it with its own message. A class
 * that is already chosen is not added again: the note says so and its chip is marked.
 */
import { IMAGENET_CLASSES } from './imagenet-classes.js';

/** Matches shown at once. */
const MAX_MATCHES = 50;

export interface ClassPicker {
  readonly labels: () => number[];
  readonly set: (labels: readonly number[]) => void;
  /** Adds `label` unless it is already chosen (then says so in the note); true when added. */
  readonly add: (label: number) => boolean;
}

/** The class's name (its first synonym), or a note when the index is not an ImageNet class. */
export function className(label: number): string {
  const name = IMAGENET_CLASSES[label];
  return name === undefined ? 'not an ImageNet class' : name.split(', ')[0]!;
}

/** Class indices whose names contain every word of `query`; an integer query comes first, as an index. */
export function searchClasses(query: string): number[] {
  const text = query.trim().toLowerCase();
  if (text === '') return [];
  const matches: number[] = [];
  if (/^-?\d+$/.test(text)) matches.push(Number(text));
  const words = text.split(/\s+/);
  for (let i = 0; i < IMAGENET_CLASSES.length && matches.length < MAX_MATCHES; i++) {
    const name = IMAGENET_CLASSES[i]!.toLowerCase();
    if (!matches.includes(i) && words.every((word) => name.includes(word))) matches.push(i);
  }
  return matches;
}

export function classPicker(
  input: HTMLInputElement,
  list: HTMLUListElement,
  chips: HTMLUListElement,
  note: HTMLElement,
  onChange: (labels: readonly number[]) => void = () => undefined,
): ClassPicker {
  let chosen: number[] = [];
  /** The chip to mark as the one a refused duplicate repeats. */
  let repeated: number | undefined;

  const say = (text: string): void => {
    note.textContent = text;
    note.hidden = text === '';
  };
  let matches: number[] = [];
  let active = 0;

  const render = (): void => {
    chips.replaceChildren(
      ...chosen.map((label, position) => {
        const item = document.createElement('li');
        const button = document.createElement('button');
        const valid = IMAGENET_CLASSES[label] !== undefined;
        button.className = [valid ? '' : 'bad', label === repeated ? 'repeated' : ''].join(' ').trim();
        button.title = valid
          ? `${IMAGENET_CLASSES[label]} — click or press Delete to remove`
          : 'Not a class of the 1000 ImageNet classes (0–999)';
        const index = document.createElement('span');
        index.className = 'index';
        index.textContent = ` ${label}`;
        button.append(`${className(label)} ×`, index);
        const remove = (): void => {
          chosen = chosen.filter((_, i) => i !== position);
          repeated = undefined;
          say('');
          render();
          onChange(chosen);
          input.focus();
        };
        button.addEventListener('click', remove);
        button.addEventListener('keydown', (event) => {
          if (event.key === 'Delete' || event.key === 'Backspace') remove();
        });
        item.append(button);
        return item;
      }),
    );
  };

  const close = (): void => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  };

  const show = (): void => {
    matches = searchClasses(input.value);
    active = Math.min(active, Math.max(0, matches.length - 1));
    if (matches.length === 0) return close();
    list.replaceChildren(
      ...matches.map((label, i) => {
        const option = document.createElement('li');
        option.id = `class-option-${i}`;
        option.setAttribute('role', 'option');
        option.setAttribute('aria-selected', String(i === active));
        const index = document.createElement('span');
        index.className = 'index';
        index.textContent = `${label} `;
        option.append(
          index,
          IMAGENET_CLASSES[label] ?? 'not an ImageNet class (0–999): the model will refuse it',
        );
        // mousedown, not click: keeps the focus in the field.
        option.addEventListener('mousedown', (event) => {
          event.preventDefault();
          pick(label);
        });
        return option;
      }),
    );
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    input.setAttribute('aria-activedescendant', `class-option-${active}`);
    list.children[active]?.scrollIntoView({ block: 'nearest' });
  };

  const pick = (label: number): void => {
    add(label);
    input.value = '';
    active = 0;
    close();
  };

  const add = (label: number): boolean => {
    if (chosen.includes(label)) {
      repeated = label;
      render();
      say(
        `${className(label)} (${label}) is already chosen; each class is generated once. Pick another class.`,
      );
      return false;
    }
    repeated = undefined;
    say('');
    chosen = [...chosen, label];
    render();
    onChange(chosen);
    return true;
  };

  input.addEventListener('input', () => {
    active = 0;
    show();
  });
  input.addEventListener('focus', show);
  input.addEventListener('blur', close);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      if (matches.length === 0) return;
      active = (active + (event.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
      show();
    } else if (event.key === 'Enter') {
      event.preventDefault();
      const label = matches[active];
      if (label !== undefined && !list.hidden) pick(label);
    } else if (event.key === 'Escape') close();
    else if (event.key === 'Backspace' && input.value === '' && chosen.length > 0) {
      chosen = chosen.slice(0, -1);
      repeated = undefined;
      say('');
      render();
      onChange(chosen);
    }
  });

  return {
    labels: () => [...chosen],
    set: (labels) => {
      chosen = [...new Set(labels)];
      repeated = undefined;
      say('');
      render();
      onChange(chosen);
    },
    add,
  };
}
