#include "parallel/grid.hpp"

#include <mpi.h>

#include <string>

#include "parallel/mpi_comm.hpp"
#include "parallel/mpi_env.hpp"
#include "util/error.hpp"

namespace medgpt::parallel {

namespace {
const char* kWhere = "parallel::Grid";

// Members of rank's group along one dimension: vary that coordinate, keep the other two.
template <class Set>
std::vector<int> group(const GridShape& shape, int rank, int extent, Set set) {
  GridCoords c = grid_coords(shape, rank);
  std::vector<int> ranks;
  ranks.reserve(extent);
  for (int i = 0; i < extent; ++i) {
    set(c, i);
    ranks.push_back(grid_rank(shape, c));
  }
  return ranks;
}
}  // namespace

GridShape make_grid_shape(int world, int tp, int pp) {
  if (tp < 1 || pp < 1)
    util::fail(kWhere,
               "tp " + std::to_string(tp) + " and pp " + std::to_string(pp) + " must be >= 1",
               "set the tensor- and pipeline-parallel sizes to positive integers");
  if (world < 1 || world % (tp * pp) != 0)
    util::fail("--parallel.tp/--parallel.pp",
               "tp " + std::to_string(tp) + " x pp " + std::to_string(pp) + " = " +
                   std::to_string(tp * pp) + " does not divide the " + std::to_string(world) +
                   " ranks of this job",
               "launch a multiple of " + std::to_string(tp * pp) +
                   " ranks, or pick tp and pp whose product divides " + std::to_string(world));
  return GridShape{tp, pp, world / (tp * pp)};
}

GridCoords grid_coords(const GridShape& s, int rank) {
  if (rank < 0 || rank >= s.world())
    util::fail(kWhere, "rank " + std::to_string(rank) + " is outside a grid of " +
                           std::to_string(s.world()));
  return GridCoords{rank % s.tp, (rank / s.tp) % s.pp, rank / (s.tp * s.pp)};
}

int grid_rank(const GridShape& s, const GridCoords& c) {
  if (c.tp < 0 || c.tp >= s.tp || c.pp < 0 || c.pp >= s.pp || c.dp < 0 || c.dp >= s.dp)
    util::fail(kWhere, "coordinates (dp " + std::to_string(c.dp) + ", pp " + std::to_string(c.pp) +
                           ", tp " + std::to_string(c.tp) + ") are outside the grid");
  return (c.dp * s.pp + c.pp) * s.tp + c.tp;
}

std::vector<int> tp_group(const GridShape& s, int rank) {
  return group(s, rank, s.tp, [](GridCoords& c, int i) { c.tp = i; });
}
std::vector<int> pp_group(const GridShape& s, int rank) {
  return group(s, rank, s.pp, [](GridCoords& c, int i) { c.pp = i; });
}
std::vector<int> dp_group(const GridShape& s, int rank) {
  return group(s, rank, s.dp, [](GridCoords& c, int i) { c.dp = i; });
}

namespace {
// One MPI_Comm_split of our world duplicate: ranks sharing a group share its first member's world
// rank as the colour, and order themselves by their coordinate along the dimension. The duplicate
// returns errors (MPI_ERRORS_RETURN), so the check below is live; MPI_COMM_WORLD itself aborts.
std::unique_ptr<Comm> split(const MpiComm& world, const std::vector<int>& members, int key, const char* name) {
  MPI_Comm c;
  if (MPI_Comm_split(world.native(), members.front(), key, &c) != MPI_SUCCESS)
    util::fail(kWhere, std::string("MPI_Comm_split for the ") + name + " group failed");
  auto comm = std::make_unique<MpiComm>(c, name);
  // The split must reproduce the layout exactly; anything else is a bug, caught here, not later.
  if (comm->size() != static_cast<int>(members.size()) || comm->rank() != key)
    util::fail(kWhere, std::string("the ") + name + " communicator does not match the grid layout");
  return comm;
}
}  // namespace

Grid::Grid(int tp, int pp) {
  // Qualified: inside Grid, plain world_size() would be the member (still 1 here).
  const int world = parallel::world_size();  // initialises MPI if needed
  rank_ = parallel::world_rank();
  shape_ = make_grid_shape(world, tp, pp);  // throws alike on every rank, before communicating
  coords_ = grid_coords(shape_, rank_);
  std::unique_ptr<MpiComm> dup = MpiComm::dup_world("world");
  tp_ = split(*dup, tp_group(shape_, rank_), coords_.tp, "tp");
  pp_ = split(*dup, pp_group(shape_, rank_), coords_.pp, "pp");
  dp_ = split(*dup, dp_group(shape_, rank_), coords_.dp, "dp");
  if (shape_.pp > 1) {  // collective over the world: the other stages pass MPI_UNDEFINED
    const std::vector<int> pipeline = pp_group(shape_, rank_);
    const bool member = first_stage() || last_stage();
    MPI_Comm c = MPI_COMM_NULL;
    if (MPI_Comm_split(dup->native(), member ? pipeline.front() : MPI_UNDEFINED, coords_.pp, &c) != MPI_SUCCESS)
      util::fail(kWhere, "MPI_Comm_split for the embedding group failed");
    if (member) embedding_ = std::make_unique<MpiComm>(c, "embedding");
  }
  world_ = std::move(dup);
}

Grid::~Grid() = default;

std::string Grid::describe() const {
  return "rank " + std::to_string(rank_) + " of " + std::to_string(shape_.world()) + " = dp " +
         std::to_string(coords_.dp) + "/" + std::to_string(shape_.dp) + ", pp " +
         std::to_string(coords_.pp) + "/" + std::to_string(shape_.pp) + ", tp " +
         std::to_string(coords_.tp) + "/" + std::to_string(shape_.tp);
}

}  // namespace medgpt::parallel
