// The CPU reference lives in bench/reference/ (the demo page's self-checks run it too); tests import it from here.
export * from '../../bench/reference/layers.js';
