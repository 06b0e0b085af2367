// Precompiled header for targets that use LibTorch: the expensive, stable includes only.
#pragma once
#include <ATen/ATen.h>
#include <torch/types.h>
#include <mpi.h>
#include <string>
#include <vector>
#include <memory>
