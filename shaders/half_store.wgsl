// half_store.wgsl: composed (by engine/storage.ts) into every kernel that stores float16.
// WGSL leaves the float32 -> float16 conversion of a value outside float16's finite range
// indeterminate, and NaN may become anything: to_half() makes overflow +-inf and keeps NaN a NaN, as
// a CPU (and PyTorch's .half()) does, so a loss scaler sees the overflow. Inside the range f16()
// rounds to a neighbouring half (nearest, ties to even, on every adapter measured).
fn to_half(v: f32) -> f16 {
  let b = bitcast<u32>(v);
  let sign = (b >> 16u) & 0x8000u;
  if ((b & 0x7fffffffu) > 0x7f800000u) { return bitcast<vec2<f16>>(sign | 0x7e00u).x; }
  if (abs(v) >= 65520.0) { return bitcast<vec2<f16>>(sign | 0x7c00u).x; }
  return f16(v);
}
