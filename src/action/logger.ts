import * as core from '@actions/core';
import type { Logger, StateStore } from '../core/ports';

export const actionLogger: Logger = {
  info: (m) => core.info(m),
  warn: (m) => core.warning(m),
  error: (m) => core.error(m),
  debug: (m) => core.debug(m),
  mask: (s) => {
    if (s) core.setSecret(s);
  },
  group: (title, fn) => core.group(title, fn),
};

export const actionState: StateStore = {
  save: (name, value) => core.saveState(name, value),
  get: (name) => core.getState(name),
};
