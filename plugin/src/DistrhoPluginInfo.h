// What the DISTRHO Plugin Framework needs to know about neuraldrum's instrument at compile time.
#pragma once

#define DISTRHO_PLUGIN_NAME "neuraldrum"
#define DISTRHO_PLUGIN_URI "https://github.com/neuraldrum/neuraldrum#instrument"

#define DISTRHO_PLUGIN_HAS_UI 0
#define DISTRHO_PLUGIN_IS_RT_SAFE 1
#define DISTRHO_PLUGIN_IS_SYNTH 1
#define DISTRHO_PLUGIN_NUM_INPUTS 0
#define DISTRHO_PLUGIN_NUM_OUTPUTS 2
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT 1
#define DISTRHO_PLUGIN_WANT_STATE 1
#define DISTRHO_PLUGIN_WANT_FULL_STATE 1
#define DISTRHO_PLUGIN_WANT_LATENCY 1
#define DISTRHO_PLUGIN_LV2_CATEGORY "lv2:InstrumentPlugin"
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Instrument|Drum"
#define DISTRHO_PLUGIN_CLAP_ID "org.neuraldrum.instrument"
#define DISTRHO_PLUGIN_CLAP_FEATURES "instrument", "drum-machine", "stereo"
