// Prints the WebGPU adapter Dawn finds, or exits 1 when there is none.
// Used by setup-webgpu.sh; it touches nothing, so it is safe to run anywhere.
process.env.XDG_RUNTIME_DIR ??= '/tmp';
let create;
try {
  ({ create } = await import('webgpu'));
} catch (e) {
  console.error(`probe-adapter: the npm package 'webgpu' is not installed (${e.message}); run npm install first`);
  process.exit(3);
}
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('probe-adapter: no WebGPU adapter');
  process.exit(1);
}
const info = adapter.info ?? {};
console.log(`WebGPU adapter: ${info.vendor || '?'} / ${info.architecture || '?'} / ${info.description || info.device || '?'}`);
process.exit(0);
