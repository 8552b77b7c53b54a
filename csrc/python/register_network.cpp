#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "backpropx/layers/registry.hpp"
#include "backpropx/stack.hpp"
#include "backpropx/update.hpp"
#include "python/bindings.hpp"

namespace bpx::python {

template <class T>
const std::int64_t* checked_lengths(const Network<T>& net, const std::optional<IntArray>& lengths,
                                    std::size_t n) {
  if (!lengths) return nullptr;
  if (lengths->ndim() != 1 || static_cast<std::size_t>(lengths->shape(0)) != n)
    throw py::value_error("lengths must have shape (" + std::to_string(n) + ",), one per sample");
  net.check_lengths(lengths->data(), n);
  return lengths->data();
}

template const std::int64_t* checked_lengths<float>(const Network<float>&, const std::optional<IntArray>&,
                                                    std::size_t);
template const std::int64_t* checked_lengths<double>(const Network<double>&, const std::optional<IntArray>&,
                                                     std::size_t);

namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// An integer of a layer option: a TypeError or ValueError naming it, not
// pybind11's cast error (a RuntimeError), for anything else or out of range.
long long option_int(py::handle v, const std::string& key) {
  if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v))
    throw py::type_error("layer option '" + key + "' must hold integers, got " +
                         std::string(py::str(py::type::handle_of(v).attr("__name__"))));
  const long long value = PyLong_AsLongLong(v.ptr());
  if (value == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("layer option '" + key + "' = " + std::string(py::str(v)) +
                          " is out of range (at most 2**63 - 1)");
  }
  return value;
}

LayerConfig to_config(const py::dict& d) {
  LayerConfig c;
  for (auto item : d) {
    const std::string key = py::cast<std::string>(item.first);
    py::handle v = item.second;
    if (key == "kind") c.kind = py::cast<std::string>(v);
    else if (key == "layers" && (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)))
      for (auto child : v) c.layers.push_back(to_config(py::cast<py::dict>(child)));
    else if (py::isinstance<py::bool_>(v)) c.ints[key] = py::cast<bool>(v) ? 1 : 0;
    else if (py::isinstance<py::int_>(v)) c.ints[key] = option_int(v, key);
    else if (py::isinstance<py::float_>(v)) c.reals[key] = py::cast<double>(v);
    else if (py::isinstance<py::str>(v)) c.strings[key] = py::cast<std::string>(v);
    else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v))
      for (auto element : v) c.int_lists[key].push_back(option_int(element, key));
    else if (!v.is_none())
      throw py::type_error("layer option '" + key + "' has unsupported type " +
                           std::string(py::str(py::type::handle_of(v).attr("__name__"))));
  }
  return c;
}

py::tuple shape_tuple(const Shape& s) { return py::tuple(py::cast(s)); }

// A NumPy view of C++ memory that keeps `owner` alive.
template <class T>
py::array_t<T> view(T* data, const Shape& shape, py::handle owner) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array_t<T>(dims, data, owner);
}

// Parameters can be written from outside (through the NumPy views), and a
// bounded activation (sigmoid, tanh, softmax) would turn an infinite weight
// into a finite, meaningless output: refuse them by name instead.
template <class T>
void require_finite_params(const Network<T>& net) {
  if (all_finite(net.params(), net.num_params())) return;
  for (const TensorInfo& t : net.tensors())
    if (!all_finite(net.params() + t.offset, shape_size(t.shape)))
      throw NonFiniteError("parameter '" + std::to_string(t.layer) + "." + t.name +
                           "' holds NaN or infinity (written through a view?)");
}

// A copy of the flat buffer `which` taken under the lock, so a concurrent
// training step is never seen half-done.
template <class T>
py::array_t<T> locked_copy(const NetworkHolder<T>& h, const T* (Network<T>::*which)() const) {
  py::array_t<T> out(static_cast<py::ssize_t>(h.net->num_params()));
  T* dst = out.mutable_data();
  py::gil_scoped_release release;
  std::shared_lock lock(h.mutex);
  const Network<T>& net = *h.net;
  std::copy((net.*which)(), (net.*which)() + net.num_params(), dst);
  return out;
}

// The computations that read X, each bound twice: dense (CArray) or sparse (CsrHolder).
template <class T, class XArray>
py::array_t<T> predict(const NetworkHolder<T>& h, const XArray& X, std::optional<IntArray> lengths) {
  const auto [x, n] = as_input(X, *h.net, "X");
  check_data(*h.net, x, n);
  const std::int64_t* lens = checked_lengths(*h.net, lengths, n);
  std::vector<py::ssize_t> dims{static_cast<py::ssize_t>(n)};
  for (std::size_t d : h.net->output_shape()) dims.push_back(static_cast<py::ssize_t>(d));
  py::array_t<T> out(dims);
  T* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    std::shared_lock lock(h.mutex);
    require_finite_params(*h.net);
    h.net->predict(x, n, dst, lens);
  }
  return out;
}

template <class T, class XArray>
py::tuple loss_and_gradients(NetworkHolder<T>& h, const XArray& X, std::optional<CArray<T>> y,
                             std::optional<Labels> labels, const std::string& loss_name,
                             std::optional<CArray<T>> weights, std::optional<IntArray> lengths) {
  const Loss loss = loss_from_name(loss_name);
  const auto [x, n] = as_input(X, *h.net, "X");
  if (n == 0) throw py::value_error("X has no samples");
  check_data(*h.net, x, n);
  Pass pass;
  pass.lengths = checked_lengths(*h.net, lengths, n);
  Targets<T> t = make_targets<T>(y, labels, weights, n, h.net->out_features(), h.net->rows_per_sample());
  py::array_t<T> grads(static_cast<py::ssize_t>(h.net->num_params()));
  T* dst = grads.mutable_data();
  double value = 0;
  {
    py::gil_scoped_release release;
    std::unique_lock lock(h.mutex);
    h.manual.pending = false;  // the gradients no longer belong to that forward
    require_finite_params(*h.net);
    Workspace<T> ws = h.net->make_workspace(n, true);
    h.net->zero_grad();
    value = h.net->forward_backward(x, t, n, loss, ws, pass);
    if (!std::isfinite(value))
      throw NonFiniteError("the loss is not finite: the network's weights or inputs overflow");
    // Copied under the lock: a training thread may zero grads() next.
    std::copy(h.net->grads(), h.net->grads() + h.net->num_params(), dst);
  }
  return py::make_tuple(value, grads);
}

template <class T, class XArray>
std::tuple<double, double, double> evaluate(const NetworkHolder<T>& h, const XArray& X,
                                            std::optional<CArray<T>> y, std::optional<Labels> labels,
                                            const std::string& loss_name, std::optional<CArray<T>> weights,
                                            std::optional<IntArray> lengths) {
  const Loss loss = loss_from_name(loss_name);
  const auto [x, n] = as_input(X, *h.net, "X");
  check_data(*h.net, x, n);
  const std::int64_t* lens = checked_lengths(*h.net, lengths, n);
  Targets<T> t = make_targets<T>(y, labels, weights, n, h.net->out_features(), h.net->rows_per_sample());
  py::gil_scoped_release release;
  std::shared_lock lock(h.mutex);
  require_finite_params(*h.net);
  const Evaluation e = h.net->evaluate(x, t, n, loss, lens);
  return {e.loss, e.correct, e.rows};
}

template <class T>
void bind_network(py::module_& m) {
  using Holder = NetworkHolder<T>;
  const std::string name = std::string("Network_") + dtype_suffix<T>();
  py::class_<Holder>(m, name.c_str())
      .def(py::init([](const py::list& layers, std::optional<std::vector<long long>> input_shape,
                       std::uint64_t seed) {
             std::vector<LayerConfig> configs;
             for (auto item : layers) configs.push_back(to_config(py::cast<py::dict>(item)));
             Shape input;
             if (input_shape) {
               if (input_shape->empty()) throw py::value_error("input_shape must have at least one axis");
               for (long long d : *input_shape) {
                 if (d <= 0) throw py::value_error("input_shape sizes must be positive, got " + std::to_string(d));
                 input.push_back(static_cast<std::size_t>(d));
               }
               checked_mul(shape_size(input), 1);
             }
             auto h = std::make_unique<Holder>();
             h->net = std::make_unique<Network<T>>(configs, input, seed);
             h->rng = Rng(seed);
             return h;
           }),
           py::arg("layers"), py::arg("input_shape"), py::arg("seed"))
      .def_property_readonly("in_features", [](const Holder& h) { return h.net->in_features(); })
      .def_property_readonly("out_features", [](const Holder& h) { return h.net->out_features(); })
      .def_property_readonly("input_shape", [](const Holder& h) { return shape_tuple(h.net->input_shape()); })
      .def_property_readonly("output_shape", [](const Holder& h) { return shape_tuple(h.net->output_shape()); })
      .def_property_readonly("rows_per_sample", [](const Holder& h) { return h.net->rows_per_sample(); })
      .def_property_readonly("output_softmax", [](const Holder& h) { return h.net->output_softmax(); })
      .def_property_readonly("accepts_lengths", [](const Holder& h) { return h.net->accepts_lengths(); })
      .def_property_readonly("masks_rows", [](const Holder& h) { return h.net->masks_rows(); })
      .def("layer_shapes", [](const Holder& h, const std::vector<std::size_t>& path) {
        // Walk down containers: [] lists the network's layers, [k] those inside layer k, ...
        const Layer<T>* container = nullptr;
        for (std::size_t i = 0; i < path.size(); ++i) {
          const Layer<T>& next = container == nullptr ? h.net->layer(path[i])
                                                      : container->children()->layer(path[i]);
          if (next.children() == nullptr) throw py::value_error("layer path does not name a container");
          container = &next;
        }
        py::list out;
        const std::size_t count = container ? container->children()->size() : h.net->num_layers();
        for (std::size_t k = 0; k < count; ++k) {
          const Layer<T>& l = container ? container->children()->layer(k) : h.net->layer(k);
          out.append(py::make_tuple(shape_tuple(l.input_shape()), shape_tuple(l.output_shape())));
        }
        return out;
      }, py::arg("path") = std::vector<std::size_t>{},
         "(input_shape, output_shape) per sample of the layers at `path` (see Layer._attach)")
      .def_property_readonly("num_layers", [](const Holder& h) { return h.net->num_layers(); })
      .def_property_readonly("num_params", [](const Holder& h) { return h.net->num_params(); })
      .def("tensors", [](const Holder& h) {
        py::list out;
        for (const TensorInfo& t : h.net->tensors())
          out.append(py::make_tuple(t.layer, t.name, shape_tuple(t.shape), t.offset, t.l2));
        return out;
      }, "(layer, name, shape, offset) of every parameter tensor, in storage order")
      .def("param_view", [](py::object self, std::size_t index) {
        Holder& h = self.cast<Holder&>();
        const TensorInfo& t = h.net->tensors().at(index);
        return view<T>(h.net->params() + t.offset, t.shape, self);
      }, py::arg("index"), "A writable view of parameter tensor `index` (no copy)")
      .def("grad_view", [](py::object self, std::size_t index) {
        Holder& h = self.cast<Holder&>();
        const TensorInfo& t = h.net->tensors().at(index);
        return view<T>(h.net->grads() + t.offset, t.shape, self);
      }, py::arg("index"))
      .def("flat_params", [](py::object self) {
        Holder& h = self.cast<Holder&>();
        return view<T>(h.net->params(), {h.net->num_params()}, self);
      })
      .def("flat_grads", [](py::object self) {
        Holder& h = self.cast<Holder&>();
        return view<T>(h.net->grads(), {h.net->num_params()}, self);
      })
      .def("assign_params", [](Holder& h, const CArray<T>& flat) {
        if (flat.ndim() != 1 || static_cast<std::size_t>(flat.shape(0)) != h.net->num_params())
          throw py::value_error("expected " + std::to_string(h.net->num_params()) + " parameters");
        py::gil_scoped_release release;
        std::unique_lock lock(h.mutex);
        std::memcpy(h.net->params(), flat.data(), h.net->num_params() * sizeof(T));
        h.manual.pending = false;  // a pending backward would mix old activations with new weights
      }, py::arg("flat"), "Copy a whole flat parameter vector in, excluding concurrent predicts")
      .def("params_copy", [](const Holder& h) { return locked_copy<T>(h, &Network<T>::params); },
           "A copy of every parameter, consistent even while another thread trains")
      .def("state_copy", [](const Holder& h) {
        py::array_t<T> params(static_cast<py::ssize_t>(h.net->num_params()));
        py::array_t<T> buffers(static_cast<py::ssize_t>(h.net->num_buffers()));
        T* p = params.mutable_data();
        T* b = buffers.mutable_data();
        {
          py::gil_scoped_release release;
          std::shared_lock lock(h.mutex);
          const Network<T>& net = *h.net;
          std::copy(net.params(), net.params() + net.num_params(), p);
          std::copy(net.buffers(), net.buffers() + net.num_buffers(), b);
        }
        return py::make_tuple(params, buffers);
      }, "Copies of every parameter and buffer, taken together under the lock (consistent while another thread trains)")
      .def("buffer_tensors", [](const Holder& h) {
        py::list out;
        for (const TensorInfo& t : h.net->buffer_tensors())
          out.append(py::make_tuple(t.layer, t.name, shape_tuple(t.shape), t.offset));
        return out;
      }, "(layer, name, shape, offset) of every buffer tensor (running statistics), in storage order")
      .def("buffer_view", [](py::object self, std::size_t index) {
        Holder& h = self.cast<Holder&>();
        const TensorInfo& t = h.net->buffer_tensors().at(index);
        return view<T>(h.net->buffers() + t.offset, t.shape, self);
      }, py::arg("index"), "A writable view of buffer tensor `index` (no copy)")
      .def("flat_buffers", [](py::object self) {
        Holder& h = self.cast<Holder&>();
        return view<T>(h.net->buffers(), {h.net->num_buffers()}, self);
      })
      .def("assign_state", [](Holder& h, const CArray<T>& params, const CArray<T>& buffers) {
        if (params.ndim() != 1 || static_cast<std::size_t>(params.shape(0)) != h.net->num_params())
          throw py::value_error("expected " + std::to_string(h.net->num_params()) + " parameters");
        if (buffers.ndim() != 1 || static_cast<std::size_t>(buffers.shape(0)) != h.net->num_buffers())
          throw py::value_error("expected " + std::to_string(h.net->num_buffers()) + " buffer values");
        py::gil_scoped_release release;
        std::unique_lock lock(h.mutex);
        if (h.net->num_params() > 0) std::memcpy(h.net->params(), params.data(), h.net->num_params() * sizeof(T));
        if (h.net->num_buffers() > 0)
          std::memcpy(h.net->buffers(), buffers.data(), h.net->num_buffers() * sizeof(T));
        h.manual.pending = false;  // a pending backward would mix old activations with new weights
      }, py::arg("params"), py::arg("buffers"),
         "Copy flat parameters and buffers in at once, excluding concurrent predicts")
      .def("set_trainable", [](Holder& h, std::size_t k, bool on) {
        Layer<T>& layer = h.net->layer(k);  // range-checked before waiting
        py::gil_scoped_release release;  // a running fit may need the GIL before its next batch
        std::unique_lock lock(h.mutex);  // which is where it sees the change
        layer.set_trainable(on);
      })
      .def("trainable", [](const Holder& h, std::size_t k) { return h.net->layer(k).trainable(); })
      .def("zero_grad", [](Holder& h) {
        py::gil_scoped_release release;
        std::unique_lock lock(h.mutex);
        h.net->zero_grad();
      })
      .def_property_readonly("accepts_sparse", [](const Holder& h) { return h.net->layer(0).accepts_sparse(); })
      .def("predict", &predict<T, CsrHolder<T>>, py::arg("X"), py::arg("lengths") = py::none())
      .def("predict", &predict<T, CArray<T>>, py::arg("X"), py::arg("lengths") = py::none())
      .def("loss_and_gradients", &loss_and_gradients<T, CsrHolder<T>>, py::arg("X"), py::arg("y"),
           py::arg("labels"), py::arg("loss"), py::arg("weights") = py::none(), py::arg("lengths") = py::none())
      .def("loss_and_gradients", &loss_and_gradients<T, CArray<T>>, py::arg("X"), py::arg("y"),
           py::arg("labels"), py::arg("loss"), py::arg("weights") = py::none(),
           py::arg("lengths") = py::none(),
           "(mean loss of (X, targets), a copy of the flat gradient); grad_view() holds it too")
      .def("evaluate", &evaluate<T, CsrHolder<T>>, py::arg("X"), py::arg("y"), py::arg("labels"),
           py::arg("loss"), py::arg("weights") = py::none(), py::arg("lengths") = py::none())
      .def("evaluate", &evaluate<T, CArray<T>>, py::arg("X"), py::arg("y"), py::arg("labels"),
           py::arg("loss"), py::arg("weights") = py::none(), py::arg("lengths") = py::none(),
           "(mean loss, number of correct rows, number of rows counted)")
      .def("forward", [](Holder& h, const CArray<T>& X, bool training, std::optional<IntArray> lengths) {
        const std::size_t n = check_samples(X.request(), h.net->input_shape(), "X");
        if (n == 0) throw py::value_error("X has no samples");
        h.net->check_input(X.data(), n);
        const std::int64_t* lens = checked_lengths(*h.net, lengths, n);
        std::vector<py::ssize_t> dims{static_cast<py::ssize_t>(n)};
        for (std::size_t d : h.net->output_shape()) dims.push_back(static_cast<py::ssize_t>(d));
        py::array_t<T> out(dims);
        T* dst = out.mutable_data();
        const T* src = X.data();
        const std::size_t out_count = n * h.net->out_features();
        {
          py::gil_scoped_release release;
          std::unique_lock lock(h.mutex);
          ManualPass<T>& manual = h.manual;
          manual.pending = false;
          require_finite_params(*h.net);
          Pass pass;
          pass.training = training;
          pass.rng = training ? &h.rng : nullptr;
          if (manual.ws.capacity < n || manual.ws.training != training) {
            manual.ws = Workspace<T>();  // free the old buffers before taking new ones
            manual.ws = h.net->make_workspace(n, training);
          }
          manual.x.assign(src, src + n * h.net->in_features());
          if (lens) manual.lengths.assign(lens, lens + n);
          else manual.lengths.clear();
          pass.lengths = lens ? manual.lengths.data() : nullptr;
          const T* y = h.net->forward(manual.x.data(), n, manual.ws, pass);
          if (!all_finite(y, out_count))
            throw NonFiniteError("the network's output is not finite: its weights or inputs overflow " +
                                 std::string(sizeof(T) == 4 ? "float32" : "float64"));
          std::copy(y, y + out_count, dst);
          manual.n = n;
          manual.pending = training;
        }
        return out;
      }, py::arg("X"), py::arg("training"), py::arg("lengths") = py::none())
      .def("backward", [](Holder& h, const CArray<T>& dY) {
        ManualPass<T>& manual = h.manual;
        if (!manual.pending)
          throw py::value_error("backward needs a preceding forward(X, training=True) whose backward "
                                "has not run yet (each training forward allows one backward, and fit, "
                                "opt.step or new weights in between end it)");
        Shape out_shape = h.net->output_shape();
        const std::size_t n = check_samples(dY.request(), out_shape, "dY");
        if (n != manual.n)
          throw py::value_error("dY has " + std::to_string(n) + " samples but the forward pass had " +
                                std::to_string(manual.n));
        std::vector<py::ssize_t> dims{static_cast<py::ssize_t>(n)};
        for (std::size_t d : h.net->input_shape()) dims.push_back(static_cast<py::ssize_t>(d));
        py::array_t<T> dx(dims);
        T* dst = dx.mutable_data();
        const T* dy = dY.data();
        {
          py::gil_scoped_release release;
          std::unique_lock lock(h.mutex);
          if (!manual.pending) throw std::invalid_argument("backward: the forward pass was superseded");
          Pass pass;
          pass.training = true;
          pass.rng = &h.rng;
          pass.lengths = manual.lengths.empty() ? nullptr : manual.lengths.data();
          manual.pending = false;
          Network<T>& net = *h.net;
          manual.grads_before.assign(net.grads(), net.grads() + net.num_params());
          net.backward(manual.x.data(), dy, dst, n, manual.ws, pass);
          if (!all_finite(dst, n * net.in_features()) || !all_finite(net.grads(), net.num_params())) {
            std::copy(manual.grads_before.begin(), manual.grads_before.end(), net.grads());
            throw NonFiniteError("backward overflowed " + std::string(sizeof(T) == 4 ? "float32" : "float64") +
                                 ": the input or parameter gradients are not finite (weights or dY too "
                                 "large); the gradients were left as they were");
          }
        }
        return dx;
      }, py::arg("dY"), "Backprop dY through the last training forward: grads += ; returns dX")
      .def("apply_update", [](Holder& h, Optimizer<T>& opt) {
        py::gil_scoped_release release;
        std::unique_lock lock(h.mutex);
        const std::vector<Segment> segments = h.net->trainable_segments();
        const double grad_max = check_gradients_finite(*h.net, segments, "this step");
        h.manual.pending = false;  // a pending backward would mix old activations with new weights
        // Python may have written the parameters since the last step: measured afresh.
        apply_update(*h.net, opt, segments, grad_max, kUnknownBound, h.manual.before_step, "this step");
      }, py::arg("optimizer"), "One optimizer step from the accumulated gradients (opt.step(net))")
      .def("get_rng_state", [](Holder& h) { return h.rng.state(); })
      .def("set_rng_state", [](Holder& h, const Rng::State& s) { h.rng.set_state(s); });
}

}  // namespace

void register_network(py::module_& m) {
  bind_network<float>(m);
  bind_network<double>(m);
}

}  // namespace bpx::python
