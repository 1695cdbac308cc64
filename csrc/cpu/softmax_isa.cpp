// softmax family, compiled once per ISA: filled in by the softmax work.
#include "pydl/isa.h"
