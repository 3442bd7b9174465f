// small.mlir with four changes: attn_sink is bf16, norm.weight is [32],
// gate.tid2eid is gone and extra.weight is new.
func.func @weights() -> (tensor<200x64xf8E4M3FN>, tensor<2x1xf8E8M0FNU>,
                         tensor<2x8x64xf4E2M1FN>, tensor<2x8x2xf8E8M0FNU>,
                         tensor<32xbf16>, tensor<4xbf16>, tensor<2x16xbf16>,
                         tensor<3xf32>) {
  %w = v4.parameter "proj.weight" : tensor<200x64xf8E4M3FN>
  %ws = v4.parameter "proj.scale" : tensor<2x1xf8E8M0FNU>
  %e = v4.parameter_stack "experts.{}.w1.weight" count 2 : tensor<2x8x64xf4E2M1FN>
  %es = v4.parameter_stack "experts.{}.w1.scale" count 2 : tensor<2x8x2xf8E8M0FNU>
  %n = v4.parameter "norm.weight" : tensor<32xbf16>
  %s = v4.parameter "attn_sink" : tensor<4xbf16>
  %g = v4.parameter "gate.weight" : tensor<2x16xbf16>
  %x = v4.parameter "extra.weight" : tensor<3xf32>
  return %w, %ws, %e, %es, %n, %s, %g, %x
      : tensor<200x64xf8E4M3FN>, tensor<2x1xf8E8M0FNU>, tensor<2x8x64xf4E2M1FN>,
        tensor<2x8x2xf8E8M0FNU>, tensor<32xbf16>, tensor<4xbf16>,
        tensor<2x16xbf16>, tensor<3xf32>
}
