#pragma once
// The fuzzed entry points, as plain functions: the libFuzzer targets (fuzz_main.cpp) call
// one each, and the model tests replay the regression corpus (fuzz/regressions/) through
// the same functions in the normal build. Each returns 0; bad input must end in a refusal
// (an frs::Error), never a crash, a hang or unbounded memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace frs::fuzz {

// Image decoding and the whole face engine (detect, align, embed) on the bytes.
int image(const std::uint8_t* data, std::size_t size);
// The first byte picks an RPC, the rest is its request message, served by the real service
// objects (no network) for an admin token with a purpose.
int requests(const std::uint8_t* data, std::size_t size);
// frs-server's YAML config file: the option keys and the `cameras:` list.
int config(const std::uint8_t* data, std::size_t size);
// The files `frs eval` reads: the first byte picks pairs, groups, a list of images (without
// and with a group column), or a score normaliser (JSON).
int eval_csv(const std::uint8_t* data, std::size_t size);

// Hand-made hostile images, made in code rather than kept as files: a PNG header claiming
// 100000 x 100000 pixels, a valid 1 x 30000 PNG (an aspect-ratio bomb), a JPEG of markers
// only with a 65535 x 65535 frame header.
std::vector<std::string> hostile_images();

}  // namespace frs::fuzz
