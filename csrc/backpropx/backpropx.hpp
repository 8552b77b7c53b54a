// backpropx's C++ library in one include. The public headers:
//
//   backpropx/layers/registry.hpp LayerConfig, make_layer(s): every layer kind from a plain description
//   backpropx/layer.hpp           the Layer interface (forward, backward, parameter specs)
//   backpropx/network.hpp         Network: layers over one flat parameter buffer; predict, forward_backward
//   backpropx/losses.hpp          Loss, loss_from_name, Targets (values or class labels, optional weights)
//   backpropx/optimizers.hpp      make_optimizer: sgd, adam, adamw, rmsprop, adagrad, rprop (torch's rules)
//   backpropx/trainer.hpp         Trainer: seeded, shuffled mini-batch epochs
//   backpropx/parallel.hpp        set_num_threads / get_num_threads
//   backpropx/io/model_file.hpp   build_model, save_model, load_model: the Python package's file format
//   backpropx/io/safetensors.hpp  the safetensors format itself
//   backpropx/common.hpp          shapes, errors (std::invalid_argument, NonFiniteError, AllocationError)
//
// Errors are exceptions, never aborts: std::invalid_argument for bad input,
// bpx::NonFiniteError for NaN or infinity, bpx::AllocationError (a
// std::bad_alloc) for memory that cannot exist, std::system_error for I/O.
#pragma once

#include "backpropx/common.hpp"
#include "backpropx/io/model_file.hpp"
#include "backpropx/io/safetensors.hpp"
#include "backpropx/layer.hpp"
#include "backpropx/layers/registry.hpp"
#include "backpropx/losses.hpp"
#include "backpropx/network.hpp"
#include "backpropx/optimizers.hpp"
#include "backpropx/parallel.hpp"
#include "backpropx/trainer.hpp"
