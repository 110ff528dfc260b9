// @ts-check
// The source picker: a combobox (the ARIA pattern: the focus stays in the text field, the arrow
// keys move through the list, Enter picks, Escape closes, then empties the field) over `sources(namePrefix:)`, asked once
// typing pauses, so a fleet of any size is searched by the server, never loaded into the page.

/** @typedef {import('./page.js').GraphQLRequest} GraphQLRequest */

/** Sources listed per search: enough to recognize one, few enough to read. */
const LISTED = 10;
/** How long typing must pause before the search is asked. */
const SEARCH_DELAY_MS = 200;

const SEARCH = `query SourceSearch($prefix: String, $first: Int!) {
  sources(namePrefix: $prefix, first: $first) { totalCount edges { node { name labels { name value } } } }
}`;

/**
 * @typedef {{ name: string, labels: { name: string, value: string }[] }} ListedSource
 * @param {{
 *   input: HTMLInputElement,
 *   listbox: HTMLElement,
 *   request: GraphQLRequest,
 *   onPick: (name: string | null) => void,
 *   onError: (error: unknown) => void,
 * }} parts
 */
export function createSourcePicker({ input, listbox, request, onPick, onError }) {
  /** @type {ListedSource[]} */
  let listed = [];
  let active = -1;
  let timer = 0;
  /** Answers to an older search than the latest are dropped. */
  let searches = 0;

  function close() {
    clearTimeout(timer);
    searches++;
    listbox.hidden = true;
    listbox.replaceChildren();
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    listed = [];
    active = -1;
  }

  /** @param {number} index */
  function activate(index) {
    active = index;
    listbox.querySelectorAll('[role="option"]').forEach((option, i) => {
      option.setAttribute('aria-selected', String(i === index));
      if (i === index) option.scrollIntoView({ block: 'nearest' });
    });
    input.setAttribute('aria-activedescendant', `source-option-${index}`);
  }

  /** @param {number} index */
  function pick(index) {
    const source = listed[index];
    if (!source) return;
    input.value = source.name;
    close();
    onPick(source.name);
  }

  /** @param {ListedSource[]} sources @param {number} total */
  function list(sources, total) {
    listed = sources;
    active = -1;
    const options = sources.map((source, index) => {
      const option = document.createElement('div');
      option.id = `source-option-${index}`;
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', 'false');
      const name = document.createElement('span');
      name.textContent = source.name;
      option.append(name);
      if (source.labels.length > 0) {
        const labels = document.createElement('small');
        labels.textContent = source.labels.map((label) => `${label.name}=${label.value}`).join(' ');
        option.append(labels);
      }
      // mousedown, not click: a click would blur the field first, which closes the list.
      option.addEventListener('mousedown', (event) => {
        event.preventDefault();
        pick(index);
      });
      return option;
    });
    const more = total - sources.length;
    if (sources.length === 0 || more > 0) {
      const note = document.createElement('div');
      note.className = 'note';
      note.setAttribute('role', 'option');
      note.setAttribute('aria-disabled', 'true');
      note.textContent =
        sources.length === 0
          ? `No source starts with “${input.value}”`
          : `and ${more.toLocaleString('en')} more: type more of the name`;
      options.push(note);
    }
    listbox.replaceChildren(...options);
    listbox.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    input.removeAttribute('aria-activedescendant');
  }

  /** Lists the sources whose names start with the field's text; `thenPick`: picks the first. */
  async function search(thenPick = false) {
    clearTimeout(timer);
    const search = ++searches;
    const prefix = input.value.trim();
    try {
      /** @type {{ sources: { totalCount: number, edges: { node: ListedSource }[] } }} */
      const data = await request(SEARCH, { prefix: prefix || null, first: LISTED });
      if (search !== searches || document.activeElement !== input) return;
      list(
        data.sources.edges.map((edge) => edge.node),
        data.sources.totalCount,
      );
      if (thenPick) pick(0);
    } catch (error) {
      onError(error);
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void search(), SEARCH_DELAY_MS);
  });

  input.addEventListener('keydown', (event) => {
    const open = !listbox.hidden;
    switch (event.key) {
      case 'ArrowDown':
      case 'ArrowUp': {
        event.preventDefault();
        if (!open || listed.length === 0) {
          void search();
          return;
        }
        const down = event.key === 'ArrowDown';
        if (active < 0) activate(down ? 0 : listed.length - 1);
        else activate((active + (down ? 1 : -1) + listed.length) % listed.length);
        return;
      }
      case 'Enter':
        // Never the form's submission: Enter picks what is listed, or the first match of what
        // was typed before its search was asked, or (on an empty field) every source.
        event.preventDefault();
        if (open && listed.length > 0) pick(Math.max(active, 0));
        else if (input.value.trim() === '') {
          close();
          onPick(null);
        } else void search(true);
        return;
      case 'Escape':
        if (open) close();
        else input.value = '';
        return;
    }
  });

  input.addEventListener('blur', close);

  return {
    /** Shows the chosen source's name in the field (empty for all sources). */
    showChosen(/** @type {string | null} */ name) {
      close();
      input.value = name ?? '';
    },
  };
}
