import type { Options, OptionValues } from '../core/options';
import { OPTIONS as ALIAS } from './alias';
import { OPTIONS as BENCHMARK_REPORT } from './benchmark-report';
import { BUILD_AMI_OPTIONS, PRUNE_AMIS_OPTIONS } from './build-ami-options';
import { COMMON_OPTIONS } from './common-options';
import { OPTIONS as DEMOTE } from './demote';
import { OPTIONS as DESCRIBE } from './describe';
import { OPTIONS as DOWNLOAD } from './download';
import { OPTIONS as FETCH_MODEL } from './fetch-model';
import { OPTIONS as FIND } from './find';
import { OPTIONS as NEEDS_MODEL } from './needs-model';
import { OPTIONS as PROMOTE } from './promote';
import { THRESHOLDS_OPTION } from './registry-context';
import { OPTIONS as ROTATE } from './rotate';
import { OPTIONS as STATUS } from './status';
import { OPTIONS as SWEEP } from './sweep';
import { TRAIN_OPTIONS } from './train-options';
import { STEP_OPTIONS } from './train-steps';
import { SAGEMAKER_TRAIN_OPTIONS } from './sagemaker-options';
import { OPTIONS as DEPLOY } from './deploy';

/**
 * Every option list of every command. The type below is read from it, and test/unit/option-table.test.ts
 * checks that it holds every option a command declares at run time, so the type covers the whole table.
 */
export const OPTION_TABLES = [
  COMMON_OPTIONS,
  TRAIN_OPTIONS,
  STEP_OPTIONS,
  SAGEMAKER_TRAIN_OPTIONS,
  DEPLOY,
  [THRESHOLDS_OPTION],
  BUILD_AMI_OPTIONS,
  PRUNE_AMIS_OPTIONS,
  ALIAS,
  BENCHMARK_REPORT,
  DEMOTE,
  DESCRIBE,
  DOWNLOAD,
  FETCH_MODEL,
  FIND,
  NEEDS_MODEL,
  PROMOTE,
  ROTATE,
  STATUS,
  SWEEP,
] as const;

/** The option table as a type: every spec with its literal name, kind and default. */
export type AnyOptionSpec = (typeof OPTION_TABLES)[number][number];

export type OptionName = AnyOptionSpec['name'];

/** Option name -> resolved value type: `string` (never undefined) when the table gives a default. */
export type PipelineOptionValues = OptionValues<AnyOptionSpec>;

/** What commands read their settings through: misspelt names and repeated defaults do not compile. */
export type PipelineOptions = Options<PipelineOptionValues>;

// a spec annotated as plain OptionSpec would widen every name to `string` and switch the checks off
type Narrow = string extends OptionName ? 'an option spec lost its literal name: use defineOption' : true;
const narrow: Narrow = true;
void narrow;
