//===- op_set_test.cc - the op set is defined once, in step ---------------===//
//
// The op set exists three times: as gemma.* ops in the dialect's ODS, as
// OpCode in the module schema, and as gemmac_op in the plugin ABI. The
// compiler emits OpCode by name and the runtime hands the value straight to
// plugins, so the three must name the same ops with the same numbers.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaDialect.h"
#include "dialect/GemmaOps.h"

#include "gemmac/module_generated.h"
#include "gemmac/plugin.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/ADT/StringExtras.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace {

using gemmac::schema::OpCode;

/// rms_norm -> RmsNorm: how an op mnemonic is spelled as an OpCode.
std::string camelCase(llvm::StringRef mnemonic) {
  std::string out;
  bool upper = true;
  for (char c : mnemonic) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? llvm::toUpper(c) : c;
    upper = false;
  }
  return out;
}

/// Mnemonics of every registered gemma op that is an instruction (all but
/// gemma.weight, which becomes a tensor in the module, not an instruction).
std::vector<std::string> instructionOps() {
  mlir::MLIRContext context;
  context.loadDialect<gemmac::gemma::GemmaDialect>();
  std::vector<std::string> ops;
  for (mlir::RegisteredOperationName name : context.getRegisteredOperations()) {
    if (name.getDialectNamespace() != "gemma")
      continue;
    llvm::StringRef mnemonic = name.stripDialect();
    if (mnemonic != "weight")
      ops.push_back(mnemonic.str());
  }
  return ops;
}

/// OpCode name -> value, read from the generated schema.
std::map<std::string, int> opCodes() {
  std::map<std::string, int> codes;
  for (OpCode code : gemmac::schema::EnumValuesOpCode())
    codes[gemmac::schema::EnumNameOpCode(code)] = static_cast<int>(code);
  return codes;
}

/// Each gemmac_op with its enumerator's suffix, spelled by the preprocessor so
/// the name cannot drift from the value. A new op fails
/// EveryOpHasAPluginValue until it is added here and to plugin.h.
struct PluginOp {
  const char *suffix; // e.g. "RMS_NORM" for GEMMAC_OP_RMS_NORM
  int value;
};
#define GEMMAC_PLUGIN_OP(name)                                                 \
  { #name, GEMMAC_OP_##name }
constexpr PluginOp kPluginOps[] = {
    GEMMAC_PLUGIN_OP(EMBED),      GEMMAC_PLUGIN_OP(RMS_NORM),
    GEMMAC_PLUGIN_OP(LINEAR),     GEMMAC_PLUGIN_OP(ROPE),
    GEMMAC_PLUGIN_OP(ATTENTION),  GEMMAC_PLUGIN_OP(GELU_TANH),
    GEMMAC_PLUGIN_OP(MUL),        GEMMAC_PLUGIN_OP(ADD),
    GEMMAC_PLUGIN_OP(SOFTCAP),    GEMMAC_PLUGIN_OP(SCALE),
    GEMMAC_PLUGIN_OP(LM_HEAD),    GEMMAC_PLUGIN_OP(ADD_RMS_NORM),
    GEMMAC_PLUGIN_OP(QKV_PROJ),   GEMMAC_PLUGIN_OP(GATED_MLP),
    GEMMAC_PLUGIN_OP(FINAL_HEAD),
};
#undef GEMMAC_PLUGIN_OP

TEST(OpSet, CamelCase) {
  EXPECT_EQ(camelCase("rms_norm"), "RmsNorm");
  EXPECT_EQ(camelCase("gelu_tanh"), "GeluTanh");
  EXPECT_EQ(camelCase("lm_head"), "LmHead");
  EXPECT_EQ(camelCase("add"), "Add");
}

TEST(OpSet, DialectHasOps) {
  // Guards the tests below against an empty registry passing vacuously.
  std::vector<std::string> ops = instructionOps();
  EXPECT_GE(ops.size(), 11u);
  EXPECT_NE(std::find(ops.begin(), ops.end(), "rms_norm"), ops.end());
}

TEST(OpSet, EveryOpHasAnOpCode) {
  std::map<std::string, int> codes = opCodes();
  for (const std::string &op : instructionOps())
    EXPECT_TRUE(codes.count(camelCase(op)))
        << "gemma." << op << " has no OpCode " << camelCase(op)
        << " in runtime/schema/module.fbs";
}

TEST(OpSet, EveryOpCodeHasAnOp) {
  std::map<std::string, int> byCamel;
  for (const std::string &op : instructionOps())
    byCamel[camelCase(op)] = 0;
  for (const auto &[name, value] : opCodes())
    EXPECT_TRUE(byCamel.count(name))
        << "OpCode " << name << " (" << value
        << ") has no gemma op in compiler/dialect/GemmaOps.td";
}

TEST(OpSet, OpCodeNamesTableMatchesValues) {
  // EnumNamesOpCode() is what gemma-dump and error messages print.
  const char *const *names = gemmac::schema::EnumNamesOpCode();
  for (OpCode code : gemmac::schema::EnumValuesOpCode()) {
    int index = static_cast<int>(code) - static_cast<int>(OpCode::MIN);
    EXPECT_STREQ(names[index], gemmac::schema::EnumNameOpCode(code));
  }
}

TEST(OpSet, EveryOpHasAPluginValue) {
  std::map<std::string, int> codes = opCodes();
  for (const std::string &op : instructionOps()) {
    const PluginOp *found = nullptr;
    for (const PluginOp &p : kPluginOps)
      if (llvm::StringRef(p.suffix).lower() == op)
        found = &p;
    ASSERT_NE(found, nullptr)
        << "gemma." << op << " has no GEMMAC_OP_" << llvm::StringRef(op).upper()
        << " in plugins/include/gemmac/plugin.h (or in this test's table)";
    EXPECT_EQ(found->value, codes[camelCase(op)])
        << "GEMMAC_OP_" << found->suffix << " is " << found->value
        << " but OpCode " << camelCase(op) << " is " << codes[camelCase(op)];
  }
}

TEST(OpSet, PluginCountMatchesOpCodes) {
  EXPECT_EQ(static_cast<size_t>(GEMMAC_OP_COUNT_), opCodes().size());
  EXPECT_EQ(std::size(kPluginOps), opCodes().size());
}

} // namespace
