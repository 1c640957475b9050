//===- GemmaDialect.cpp - the gemma dialect--------------------------------===//

#include "dialect/GemmaDialect.h"
#include "dialect/GemmaOps.h"

using namespace gemmac::gemma;

#include "dialect/GemmaDialect.cpp.inc"

void GemmaDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/GemmaOps.cpp.inc"
      >();
}
