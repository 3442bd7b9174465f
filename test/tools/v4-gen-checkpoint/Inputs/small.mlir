// A small module for the checkpoint tool tests: FP8 with 128-blocks, a packed
// FP4 expert stack with per-32 scales, bf16, f32 and a token-to-expert table.
func.func @weights() -> (tensor<200x64xf8E4M3FN>, tensor<2x1xf8E8M0FNU>,
                         tensor<2x8x64xf4E2M1FN>, tensor<2x8x2xf8E8M0FNU>,
                         tensor<16xbf16>, tensor<4xf32>, tensor<2x16xbf16>,
                         tensor<11x2xi64>) {
  %w = v4.parameter "proj.weight" : tensor<200x64xf8E4M3FN>
  %ws = v4.parameter "proj.scale" : tensor<2x1xf8E8M0FNU>
  %e = v4.parameter_stack "experts.{}.w1.weight" count 2 : tensor<2x8x64xf4E2M1FN>
  %es = v4.parameter_stack "experts.{}.w1.scale" count 2 : tensor<2x8x2xf8E8M0FNU>
  %n = v4.parameter "norm.weight" : tensor<16xbf16>
  %s = v4.parameter "attn_sink" : tensor<4xf32>
  %g = v4.parameter "gate.weight" : tensor<2x16xbf16>
  %t = v4.parameter "gate.tid2eid" : tensor<11x2xi64>
  return %w, %ws, %e, %es, %n, %s, %g, %t
      : tensor<200x64xf8E4M3FN>, tensor<2x1xf8E8M0FNU>, tensor<2x8x64xf4E2M1FN>,
        tensor<2x8x2xf8E8M0FNU>, tensor<16xbf16>, tensor<4xf32>,
        tensor<2x16xbf16>, tensor<11x2xi64>
}
