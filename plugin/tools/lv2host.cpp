// neuraldrum-lv2-host: a minimal LV2 host (lilv) that plays MIDI notes into an instrument, for tests.
//   neuraldrum-lv2-host URI RATE SECONDS OUT.f32 [SECONDS:NOTE:VELOCITY ...]
// Finds the plugin on LV2_PATH, runs it in blocks of 256 frames with each note at its frame, and writes the first
// audio output as raw float32.
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/midi/midi.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

std::map<std::string, LV2_URID> uris;

LV2_URID map(LV2_URID_Map_Handle, const char* uri) {
    auto it = uris.find(uri);
    if (it != uris.end()) return it->second;
    const LV2_URID id = LV2_URID(uris.size() + 1);
    uris[uri] = id;
    return id;
}

struct Worker {
    const LV2_Worker_Interface* iface = nullptr;
    LV2_Handle handle = nullptr;
};

LV2_Worker_Status respond(LV2_Worker_Respond_Handle h, uint32_t size, const void* data) {
    auto* w = static_cast<Worker*>(h);
    return w->iface && w->iface->work_response ? w->iface->work_response(w->handle, size, data) : LV2_WORKER_SUCCESS;
}

LV2_Worker_Status schedule(LV2_Worker_Schedule_Handle h, uint32_t size, const void* data) {
    auto* w = static_cast<Worker*>(h);  // done at once: this host is offline
    return w->iface ? w->iface->work(w->handle, respond, w, size, data) : LV2_WORKER_ERR_UNKNOWN;
}

struct Note { uint32_t frame; uint8_t note, velocity; };

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: neuraldrum-lv2-host URI RATE SECONDS OUT.f32 [SECONDS:NOTE:VELOCITY ...]\n");
        return 2;
    }
    const double rate = std::atof(argv[2]);
    const uint32_t total = uint32_t(std::lround(std::atof(argv[3]) * rate));
    std::vector<Note> notes;
    for (int i = 5; i < argc; ++i) {
        double t;
        int n, v;
        if (std::sscanf(argv[i], "%lf:%d:%d", &t, &n, &v) != 3) return 2;
        notes.push_back({uint32_t(std::lround(t * rate)), uint8_t(n), uint8_t(v)});
    }
    LilvWorld* world = lilv_world_new();
    lilv_world_load_all(world);
    LilvNode* uri = lilv_new_uri(world, argv[1]);
    const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
    if (!plugin) {
        std::fprintf(stderr, "neuraldrum-lv2-host: %s is not on LV2_PATH\n", argv[1]);
        return 1;
    }
    const uint32_t block = 256;
    LV2_URID_Map urid{nullptr, map};
    const int32_t maxBlock = int32_t(block), minBlock = 1;
    const float fRate = float(rate);
    const LV2_Options_Option options[] = {
        {LV2_OPTIONS_INSTANCE, 0, map(nullptr, LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t),
         map(nullptr, LV2_ATOM__Int), &maxBlock},
        {LV2_OPTIONS_INSTANCE, 0, map(nullptr, LV2_BUF_SIZE__minBlockLength), sizeof(int32_t),
         map(nullptr, LV2_ATOM__Int), &minBlock},
        {LV2_OPTIONS_INSTANCE, 0, map(nullptr, LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t),
         map(nullptr, LV2_ATOM__Int), &maxBlock},
        {LV2_OPTIONS_INSTANCE, 0, map(nullptr, LV2_PARAMETERS__sampleRate), sizeof(float),
         map(nullptr, LV2_ATOM__Float), &fRate},
        {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr}};
    Worker worker;
    LV2_Worker_Schedule sched{&worker, schedule};
    const LV2_Feature fMap{LV2_URID__map, &urid}, fOpt{LV2_OPTIONS__options, (void*)options},
        fSched{LV2_WORKER__schedule, &sched}, fBounded{LV2_BUF_SIZE__boundedBlockLength, nullptr};
    const LV2_Feature* features[] = {&fMap, &fOpt, &fSched, &fBounded, nullptr};
    LilvInstance* inst = lilv_plugin_instantiate(plugin, rate, features);
    if (!inst) {
        std::fprintf(stderr, "neuraldrum-lv2-host: the plugin did not instantiate\n");
        return 1;
    }
    worker.handle = lilv_instance_get_handle(inst);
    worker.iface = static_cast<const LV2_Worker_Interface*>(lilv_instance_get_extension_data(inst, LV2_WORKER__interface));

    LilvNode* audio = lilv_new_uri(world, LILV_URI_AUDIO_PORT);
    LilvNode* control = lilv_new_uri(world, LILV_URI_CONTROL_PORT);
    LilvNode* atom = lilv_new_uri(world, LV2_ATOM__AtomPort);
    LilvNode* input = lilv_new_uri(world, LILV_URI_INPUT_PORT);
    const uint32_t nPorts = lilv_plugin_get_num_ports(plugin);
    std::vector<float> controls(nPorts, 0.0f);
    std::vector<std::vector<float>> audioBufs;
    std::vector<uint64_t> seqIn(8192 / 8), seqOut(8192 / 8);
    std::vector<int> audioOuts;
    for (uint32_t p = 0; p < nPorts; ++p) {
        const LilvPort* port = lilv_plugin_get_port_by_index(plugin, p);
        if (lilv_port_is_a(plugin, port, audio)) {
            audioBufs.emplace_back(block, 0.0f);
            audioOuts.push_back(int(audioBufs.size()) - 1);
            lilv_instance_connect_port(inst, p, audioBufs.back().data());
        } else if (lilv_port_is_a(plugin, port, control)) {
            LilvNode *def = nullptr, *mn = nullptr, *mx = nullptr;
            lilv_port_get_range(plugin, port, &def, &mn, &mx);
            controls[p] = def ? lilv_node_as_float(def) : 0.0f;
            lilv_node_free(def), lilv_node_free(mn), lilv_node_free(mx);
            lilv_instance_connect_port(inst, p, &controls[p]);
        } else if (lilv_port_is_a(plugin, port, atom)) {
            lilv_instance_connect_port(inst, p, lilv_port_is_a(plugin, port, input) ? seqIn.data() : seqOut.data());
        } else {
            lilv_instance_connect_port(inst, p, nullptr);
        }
    }
    std::vector<float> out;
    out.reserve(total);
    const LV2_URID midiEvent = map(nullptr, LV2_MIDI__MidiEvent), sequence = map(nullptr, LV2_ATOM__Sequence);
    lilv_instance_activate(inst);
    for (uint32_t at = 0; at < total; at += block) {
        const uint32_t n = std::min(block, total - at);
        auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(seqIn.data());
        seq->atom.type = sequence;
        seq->atom.size = sizeof(LV2_Atom_Sequence_Body);
        seq->body.unit = 0;
        seq->body.pad = 0;
        for (const Note& note : notes) {
            if (note.frame < at || note.frame >= at + n) continue;
            struct { LV2_Atom_Event ev; uint8_t msg[3]; } e{};
            e.ev.time.frames = note.frame - at;
            e.ev.body.type = midiEvent;
            e.ev.body.size = 3;
            e.msg[0] = 0x90, e.msg[1] = note.note, e.msg[2] = note.velocity;
            LV2_Atom_Event* end = lv2_atom_sequence_end(&seq->body, seq->atom.size);
            std::memcpy(end, &e, sizeof(LV2_Atom_Event) + 3);
            seq->atom.size += uint32_t(lv2_atom_pad_size(sizeof(LV2_Atom_Event) + 3));
        }
        auto* o = reinterpret_cast<LV2_Atom*>(seqOut.data());
        o->size = uint32_t(seqOut.size() * 8 - sizeof(LV2_Atom));
        o->type = map(nullptr, LV2_ATOM__Chunk);
        lilv_instance_run(inst, n);
        out.insert(out.end(), audioBufs[audioOuts[0]].begin(), audioBufs[audioOuts[0]].begin() + n);
    }
    lilv_instance_deactivate(inst);
    lilv_instance_free(inst);
    std::ofstream(argv[4], std::ios::binary).write(reinterpret_cast<const char*>(out.data()),
                                                   std::streamsize(out.size() * sizeof(float)));
    for (LilvNode* node : {uri, audio, control, atom, input}) lilv_node_free(node);
    lilv_world_free(world);
    return 0;
}
