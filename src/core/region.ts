/** The AWS region used when neither the region option nor AWS_REGION / AWS_DEFAULT_REGION names one. */
export const DEFAULT_REGION = 'us-east-1';
