// The plugin's state is a kit: the same `neuraldrum-kit` v1 JSON that `neuraldrum kit` writes and the web page
// saves, so a DAW project, the CLI and the page all remake the same sounds from it.
#pragma once
#include <array>
#include <string>

#include "instrument.hpp"

namespace nd {

std::string kitToJson(const Model& m, const std::array<PadSpec, kPads>& pads);
// The first 11 slots become the pads (a slot's note, else its class's GM note); throws std::runtime_error naming
// the field that is wrong. hifi: set to the Griffin-Lim iterations the kit was rendered with (0: none).
std::array<PadSpec, kPads> kitFromJson(const Model& m, const std::string& text, int* hifi = nullptr);

}  // namespace nd
