// The attention mask of a packed row, in one place for the CPU reference, the kernels and the
// tests (docs/DESIGN.md §1.3). The whole mask is one integer per key: end[k] is the first query
// position that can no longer see key k, so
//     key k is visible to query q   <=>   k <= q < end[k]
// which gives causality, document masking between packed units, the prefix-sharing exclusion
// (a rejected-side query never sees the chosen response) and padding (end[k] = k + 1) at once.
//
// A kernel that works on tiles of queries [q0, q1) and keys [k0, k1) classifies each tile from
// the smallest and largest end[] of its keys (computed once per key block):
//     skip     no (q, k) of the tile is visible:   q1 - 1 < k0  or  e_max <= q0
//     full     every (q, k) is visible:            k1 - 1 <= q0 and e_min >= q1
//     partial  anything else: apply visible() element by element
#pragma once
#include <cstdint>
#include "kernels/host_device.h"

HOST_DEVICE inline bool attention_visible(int q, int k, int32_t end_k) {
    return k <= q && q < end_k;
}

enum TileClass : int8_t { TILE_SKIP = 0, TILE_FULL = 1, TILE_PARTIAL = 2 };

// Class of the tile of queries [q0, q1) and keys [k0, k1) (both non-empty), given the minimum and
// maximum of end[k] over k in [k0, k1).
HOST_DEVICE inline TileClass attention_tile_class(int q0, int q1, int k0, int k1, int32_t end_min,
                                                  int32_t end_max) {
    if (q1 - 1 < k0 || end_max <= q0) return TILE_SKIP;
    if (k1 - 1 <= q0 && end_min >= q1) return TILE_FULL;
    return TILE_PARTIAL;
}
