// WGSL files are imported as text: esbuild's `text` loader (scripts/build.mjs) and the
// small transform in vitest.config.ts both turn `import src from './x.wgsl'` into a string.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
