//===- V4Attrs.td - v4 attributes --------------------------*- tablegen -*-===//
//
// Attributes of the v4 dialect. Enum attributes are declared in V4Base.td and
// generated here together with the attribute definitions.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4ATTRS_TD
#define V4_DIALECTS_V4_V4ATTRS_TD

include "dialects/V4/V4Base.td"

class V4_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<V4_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def V4_RopeTableAttr : V4_Attr<"RopeTable", "rope"> {
  let summary = "RoPE frequency table: base, rotated dims and YaRN parameters";
  let description = [{
    The frequency table of one layer's RoPE (V4-SPEC 2.2). `ropeDim` is the
    number of rotated (last) dims, `base` the theta. With `factor` = 1 there
    is no YaRN (SWA layers); otherwise YaRN blends `f_i/factor` and `f_i` over
    the ramp defined by `originalSeqLen`, `betaFast` and `betaSlow`. There is
    never an mscale.

    ```mlir
    #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0,
             originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
    ```
  }];
  let parameters = (ins "int64_t":$ropeDim, "::mlir::FloatAttr":$base,
                        "::mlir::FloatAttr":$factor, "int64_t":$originalSeqLen,
                        "::mlir::FloatAttr":$betaFast,
                        "::mlir::FloatAttr":$betaSlow);
  let assemblyFormat = [{
    `<` `ropeDim` `=` $ropeDim `,` `base` `=` $base `,` `factor` `=` $factor
    `,` `originalSeqLen` `=` $originalSeqLen `,` `betaFast` `=` $betaFast
    `,` `betaSlow` `=` $betaSlow `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// True when the table applies the YaRN blend (factor != 1).
    bool hasYarn() const;
    /// The 32 (= ropeDim/2) frequencies f'_i exactly as the reference builds
    /// them: computed in fp32, YaRN blend included (V4-SPEC 2.2).
    ::llvm::SmallVector<float> getFrequencies() const;
    /// The YaRN ramp bounds (low, high) over the frequency index
    /// (V4-SPEC 2.2: 15 and 25 for ropeDim 64, base 160000, original 65536).
    std::pair<double, double> getYarnRamp() const;
  }];
}

#endif // V4_DIALECTS_V4_V4ATTRS_TD
