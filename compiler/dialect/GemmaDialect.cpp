//===- GemmaDialect.cpp - the gemma dialect--------------------------------===//

#include "dialect/GemmaDialect.h"
#include "dialect/GemmaOps.h"
#include "dialect/GemmaTypes.h"

using namespace gemmac::gemma;

#include "dialect/GemmaDialect.cpp.inc"

void GemmaDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/GemmaOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialect/GemmaTypes.cpp.inc"
      >();
}
