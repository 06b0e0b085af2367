// parallel::Grid: the process grid world = dp x pp x tp and its communicators.
// Rank order: tp fastest, then pp, then dp, so consecutive ranks (one node under mpirun/srun's
// default block placement) form a tensor-parallel group, whose collectives are the most frequent.
// The layout math is free functions, testable without MPI; Grid applies it to MPI_COMM_WORLD.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "parallel/comm.hpp"

namespace medgpt::parallel {

// Group sizes of the three parallel dimensions.
struct GridShape {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int world() const { return tp * pp * dp; }
};

// A rank's index along each dimension (its rank inside its tp, pp and dp groups).
struct GridCoords {
  int tp = 0;
  int pp = 0;
  int dp = 0;
  bool operator==(const GridCoords& o) const { return tp == o.tp && pp == o.pp && dp == o.dp; }
  bool operator!=(const GridCoords& o) const { return !(*this == o); }
};

// dp = world / (tp * pp). Throws util::Error when tp or pp < 1 or tp * pp does not divide world.
GridShape make_grid_shape(int world, int tp, int pp);

// rank = (dp * pp_size + pp) * tp_size + tp. Both throw util::Error when out of range.
GridCoords grid_coords(const GridShape& shape, int rank);
int grid_rank(const GridShape& shape, const GridCoords& coords);

// World ranks of the group `rank` belongs to along one dimension, in group-rank order
// (element i is the member whose coordinate along that dimension is i).
std::vector<int> tp_group(const GridShape& shape, int rank);
std::vector<int> pp_group(const GridShape& shape, int rank);
std::vector<int> dp_group(const GridShape& shape, int rank);

class Grid {
 public:
  // Splits MPI_COMM_WORLD (initialising MPI if needed) into this rank's tp, pp and dp
  // communicators, once. Collective: every rank constructs it with the same (tp, pp). Throws
  // util::Error (on every rank alike, before any communication) when tp * pp does not divide the
  // world size.
  Grid(int tp, int pp);
  ~Grid();
  Grid(const Grid&) = delete;
  Grid& operator=(const Grid&) = delete;

  const GridShape& shape() const { return shape_; }
  const GridCoords& coords() const { return coords_; }
  int rank() const { return rank_; }  // in the world
  int world_size() const { return shape_.world(); }
  int tp_size() const { return shape_.tp; }
  int pp_size() const { return shape_.pp; }
  int dp_size() const { return shape_.dp; }
  int tp_rank() const { return coords_.tp; }
  int pp_rank() const { return coords_.pp; }
  int dp_rank() const { return coords_.dp; }
  bool first_stage() const { return coords_.pp == 0; }
  bool last_stage() const { return coords_.pp == shape_.pp - 1; }

  Comm& world() { return *world_; }
  Comm& tp() { return *tp_; }
  Comm& pp() { return *pp_; }
  Comm& dp() { return *dp_; }
  // The first and the last pipeline stage of this rank's pipeline (same tp and dp coordinates):
  // a tied embedding's two copies sum their gradients over it (Megatron's embedding group).
  // Null on the other stages and when pp is 1.
  Comm* embedding() { return embedding_.get(); }

  // "rank 3 of 4 = dp 0/1, pp 1/2, tp 1/2", for logs.
  std::string describe() const;

 private:
  GridShape shape_;
  GridCoords coords_;
  int rank_ = 0;
  std::unique_ptr<Comm> world_, tp_, pp_, dp_, embedding_;
};

}  // namespace medgpt::parallel
