/**
 * The one bundle (dist/lib/index.js) behind all three entry points, so the action and the CLI ship the same
 * code: dist/main and dist/post are the action's steps, dist/cli the model-pipeline command.
 */
export { main as runActionMain } from './action/main';
export { post as runActionPost } from './action/post';
export { runCliProcess } from './cli/process';
