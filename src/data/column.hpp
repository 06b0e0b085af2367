// One column of a corpus (tokens, loss mask): either owned (a std::vector, grown while preparing)
// or a read-only view of a memory-mapped HDF5 dataset, so a corpus larger than memory is served
// from the page cache. Reads look the same either way; a write to a mapped column first copies it
// into memory (the writers only ever build owned columns).
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <vector>

#include "util/mapped_file.hpp"

namespace medgpt::data {

template <class T>
class Column {
 public:
  Column() = default;
  Column(std::vector<T> v) : own_(std::move(v)) {}  // NOLINT: a vector is a column
  Column(std::initializer_list<T> v) : own_(v) {}
  // A view of n values at `data`, kept valid by `keep` (the mapping).
  static Column view(const T* data, std::size_t n, std::shared_ptr<const void> keep) {
    Column c;
    c.view_ = data, c.n_ = n, c.keep_ = std::move(keep);
    return c;
  }
  Column& operator=(std::vector<T> v) {
    *this = Column(std::move(v));
    return *this;
  }

  bool mapped() const { return view_ != nullptr; }
  std::size_t size() const { return view_ ? n_ : own_.size(); }
  bool empty() const { return size() == 0; }
  const T* data() const { return view_ ? view_ : own_.data(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }
  const T& operator[](std::size_t i) const { return data()[i]; }
  const T& back() const { return data()[size() - 1]; }
  std::vector<T> vec() const { return {begin(), end()}; }
  // Starts reading values [first, first + n) of a mapped column from disk (no-op when owned).
  void prefetch(std::size_t first, std::size_t n) const {
    if (view_) util::prefetch_pages(view_ + first, n * sizeof(T));
  }

  // Writes (owned columns; a mapped one is copied into memory first).
  T* data() { return owned().data(); }
  void resize(std::size_t n) { owned().resize(n); }
  void push_back(T v) { owned().push_back(v); }
  template <class It>
  void append(It first, It last) {
    owned().insert(owned().end(), first, last);
  }
  template <class It>
  void assign(It first, It last) {
    *this = std::vector<T>(first, last);
  }

  friend bool operator==(const Column& a, const Column& b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }
  friend bool operator==(const Column& a, const std::vector<T>& b) { return a == Column::view(b.data(), b.size(), nullptr); }

 private:
  std::vector<T>& owned() {
    if (view_) {
      own_.assign(view_, view_ + n_);
      view_ = nullptr, n_ = 0, keep_.reset();
    }
    return own_;
  }

  std::vector<T> own_;
  const T* view_ = nullptr;
  std::size_t n_ = 0;
  std::shared_ptr<const void> keep_;
};

}  // namespace medgpt::data
