// Python files are imported as text (the CLI bundles its PyTorch peer, scripts/pytorch_step.py): esbuild's
// `text` loader (scripts/build.mjs) and the transform in vitest.config.ts turn the import into a string.
declare module '*.py' {
  const source: string;
  export default source;
}
