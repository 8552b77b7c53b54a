#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>

#include "backpropx/trainer.hpp"
#include "python/bindings.hpp"

namespace bpx::python {

namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// Keeps the Python objects of the network and optimizer alive as long as
// the C++ trainer refers to them.
template <class T>
struct TrainerHolder {
  py::object network_owner, optimizer_owner;
  py::object reducer;  // the data-parallel reduce callable, kept alive here
  NetworkHolder<T>* network;
  std::unique_ptr<Trainer<T>> trainer;
  // One epoch at a time: a callback that re-enters train_epoch, or a second
  // thread, would otherwise resize the buffers the running epoch is using.
  std::atomic<bool> in_epoch{false};
};

// Marks a trainer busy for the scope, or refuses when it already is.
class EpochGuard {
 public:
  explicit EpochGuard(std::atomic<bool>& flag) : flag_(flag) {
    if (flag_.exchange(true))
      throw std::runtime_error("this trainer is already running an epoch (re-entered from a callback, "
                               "or called from another thread); one Trainer trains one fit at a time");
  }
  ~EpochGuard() { flag_.store(false); }
  EpochGuard(const EpochGuard&) = delete;
  EpochGuard& operator=(const EpochGuard&) = delete;

 private:
  std::atomic<bool>& flag_;
};

// One epoch over X, dense (CArray) or sparse (CsrHolder); bound for both.
template <class T, class XArray>
py::dict train_epoch(TrainerHolder<T>& h, const XArray& X, std::optional<CArray<T>> y,
                     std::optional<Labels> labels, py::object callback, std::size_t every,
                     std::optional<CArray<T>> weights, std::optional<IntArray> lengths) {
  EpochGuard busy(h.in_epoch);
  Network<T>& net = *h.network->net;
  const auto [x, n] = as_input(X, net, "X");
  check_data(net, x, n);
  const std::int64_t* lens = checked_lengths(net, lengths, n);
  Targets<T> t = make_targets<T>(y, labels, weights, n, net.out_features(), net.rows_per_sample());
  EpochStats stats;
  {
    py::gil_scoped_release release;
    std::unique_lock lock(h.network->mutex);
    h.network->manual.pending = false;  // fit replaces the gradients a manual forward awaited
    // Between batches the network is consistent: let other threads in
    // (e.g. a callback that predicts) and never wait on the lock while
    // holding the GIL.
    // Ctrl-C is noticed within ~50 ms at a batch boundary, so the
    // network is left consistent; the GIL is taken only then.
    const bool has_callback = !callback.is_none() && every > 0;
    auto last_check = std::chrono::steady_clock::now();
    std::function<void(const BatchProgress&)> on_batches = [&](const BatchProgress& p) {
      const bool due = has_callback && (p.batch % every == 0 || p.batch == p.batches);
      const auto now = std::chrono::steady_clock::now();
      if (!due && now - last_check < std::chrono::milliseconds(50)) {
        h.trainer->keep_parameter_bound();  // nothing ran: the parameters are as the step left them
        return;
      }
      last_check = now;
      lock.unlock();
      {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (due) callback(p.batch, p.batches, p.samples, p.loss);
      }
      lock.lock();
    };
    stats = h.trainer->train_epoch(x, t, n, on_batches, 1, lens);
  }
  py::dict out;
  out["loss"] = stats.loss;
  out["accuracy"] = stats.accuracy;
  out["samples"] = stats.samples;
  out["batches"] = stats.batches;
  out["grad_norm"] = stats.grad_norm;
  out["update_ratio"] = stats.update_ratio;
  return out;
}

template <class T>
void bind_trainer(py::module_& m) {
  using Holder = TrainerHolder<T>;
  const std::string name = std::string("Trainer_") + dtype_suffix<T>();
  py::class_<Holder>(m, name.c_str())
      .def(py::init([](py::object network, py::object optimizer, const std::string& loss,
                       std::size_t batch_size, bool shuffle, std::uint64_t seed) {
             auto h = std::make_unique<Holder>();
             h->network = &network.cast<NetworkHolder<T>&>();
             Optimizer<T>& opt = optimizer.cast<Optimizer<T>&>();
             h->trainer = std::make_unique<Trainer<T>>(*h->network->net, opt, loss_from_name(loss),
                                                       batch_size, shuffle, seed);
             h->network_owner = std::move(network);
             h->optimizer_owner = std::move(optimizer);
             return h;
           }),
           py::arg("network"), py::arg("optimizer"), py::arg("loss"), py::arg("batch_size"),
           py::arg("shuffle"), py::arg("seed"))
      .def("train_epoch", &train_epoch<T, CsrHolder<T>>, py::arg("X"), py::arg("y"), py::arg("labels"),
           py::arg("callback"), py::arg("every"), py::arg("weights") = py::none(),
           py::arg("lengths") = py::none())
      .def("train_epoch", &train_epoch<T, CArray<T>>, py::arg("X"), py::arg("y"), py::arg("labels"),
           py::arg("callback"), py::arg("every"), py::arg("weights") = py::none(),
           py::arg("lengths") = py::none())
      .def("set_clipping", [](Holder& h, double value, double norm) {
        h.trainer->set_clipping(Clipping{value, norm});
      }, py::arg("clip_value"), py::arg("clip_norm"))
      .def("set_l2", [](Holder& h, double alpha) { h.trainer->set_l2(alpha); }, py::arg("alpha"))
      .def("set_data_parallel", [](Holder& h, std::size_t rank, std::size_t size,
                                   py::object reduce) {
        static_assert(sizeof(StepSums) == 5 * sizeof(double) &&
                          offsetof(StepSums, reducer) == 3 * sizeof(double),
                      "StepSums is viewed as 5 doubles");
        DataParallel<T> dp{rank, size, nullptr};
        if (!reduce.is_none()) {
          // A borrowed handle: the holder owns the callable, so copies of the
          // std::function never touch reference counts without the GIL.
          py::handle fn = reduce;
          dp.reduce = [fn](T* grads, std::size_t count, StepSums& sums) {
            // Runs inside train_epoch with the network lock held; every binding
            // that takes the lock releases the GIL first, so this cannot deadlock.
            py::gil_scoped_acquire gil;
            py::array_t<T> g(static_cast<py::ssize_t>(count), grads, py::none());
            py::array_t<double> s(5, &sums.loss, py::none());
            fn(g, s);
          };
        }
        h.trainer->set_data_parallel(std::move(dp));
        h.reducer = std::move(reduce);
      }, py::arg("rank"), py::arg("size"), py::arg("reduce"),
         "Data-parallel training (DataParallel in trainer.hpp): reduce(grads, sums) is called "
         "once per step with views (no copies; valid during the call only) of the flat gradient "
         "buffer and of the step's 5 float64 sums (loss share, correct, draws, two reducer "
         "flags); it must replace both by their sums over all processes. None: one process.")
      .def("get_rng_state", [](Holder& h) { return h.trainer->rng().state(); })
      .def("set_rng_state", [](Holder& h, const Rng::State& s) { h.trainer->rng().set_state(s); });
}

}  // namespace

void register_trainer(py::module_& m) {
  bind_trainer<float>(m);
  bind_trainer<double>(m);
}

}  // namespace bpx::python
