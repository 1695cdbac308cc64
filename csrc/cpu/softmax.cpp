// softmax family binding: filled in by the softmax work.
#include <pybind11/pybind11.h>
namespace pydl {
void bind_softmax(pybind11::module_& m) {}
}  // namespace pydl
