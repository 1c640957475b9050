//===- gemma-opt.cpp - MlirOptMain driver for the gemma dialect------------===//
//
// Parses gemma IR, runs any registered pass pipeline and prints the result:
// the driver of the lit tests in test/lit/. Only the passes gemmac uses are
// registered, so `gemma-opt --help` stays short enough to read.
//
//===----------------------------------------------------------------------===//

#include "dialect/GemmaDialect.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  gemmac::registerGemmaPasses();

  mlir::DialectRegistry registry;
  registry.insert<gemmac::gemma::GemmaDialect, mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "gemma IR optimizer driver\n", registry));
}
