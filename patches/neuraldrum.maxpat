{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 5,
   "revision": 0,
   "architecture": "x64",
   "modernui": 1
  },
  "classnamespace": "box",
  "rect": [
   80,
   80,
   760,
   560
  ],
  "openinpresentation": 0,
  "default_fontsize": 12.0,
  "boxes": [
   {
    "box": {
     "id": "title",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      10,
      700,
      20
     ],
     "text": "neuraldrum for Max: start the server first (neuraldrum osc), then move the pad. Sounds load into buffer~ nd-sample."
    }
   },
   {
    "box": {
     "id": "lb",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      560,
      40,
      60,
      22
     ],
     "text": "loadbang",
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "dl",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      560,
      66,
      60,
      22
     ],
     "text": "deferlow",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "reply",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      560,
      92,
      80,
      22
     ],
     "text": "/reply 9001",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "c_class",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      40,
      60,
      20
     ],
     "text": "class"
    }
   },
   {
    "box": {
     "id": "menu",
     "maxclass": "umenu",
     "numinlets": 1,
     "numoutlets": 3,
     "patching_rect": [
      20,
      60,
      110,
      22
     ],
     "outlettype": [
      "int",
      "",
      ""
     ],
     "items": [
      "kick",
      ",",
      "snare",
      ",",
      "clap",
      ",",
      "hh_closed",
      ",",
      "hh_open",
      ",",
      "tom",
      ",",
      "ride",
      ",",
      "crash",
      ",",
      "rim",
      ",",
      "cowbell",
      ",",
      "shaker"
     ]
    }
   },
   {
    "box": {
     "id": "c_pad",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      150,
      40,
      150,
      20
     ],
     "text": "XY pad: x = P1, y = P2"
    }
   },
   {
    "box": {
     "id": "pad",
     "maxclass": "pictslider",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      150,
      60,
      150,
      150
     ],
     "outlettype": [
      "int",
      "int"
     ]
    }
   },
   {
    "box": {
     "id": "sx",
     "maxclass": "newobj",
     "numinlets": 6,
     "numoutlets": 1,
     "patching_rect": [
      150,
      220,
      120,
      22
     ],
     "text": "scale 0 127 -1. 1.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "sy",
     "maxclass": "newobj",
     "numinlets": 6,
     "numoutlets": 1,
     "patching_rect": [
      280,
      220,
      120,
      22
     ],
     "text": "scale 127 0 -1. 1.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "c_fine",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      320,
      40,
      80,
      20
     ],
     "text": "fine (P3)"
    }
   },
   {
    "box": {
     "id": "fine",
     "maxclass": "dial",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      320,
      60,
      40,
      40
     ],
     "outlettype": [
      "float"
     ],
     "floatoutput": 0,
     "size": 128
    }
   },
   {
    "box": {
     "id": "sf",
     "maxclass": "newobj",
     "numinlets": 6,
     "numoutlets": 1,
     "patching_rect": [
      410,
      220,
      120,
      22
     ],
     "text": "scale 0 127 -1. 1.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "c_range",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      320,
      110,
      60,
      20
     ],
     "text": "range"
    }
   },
   {
    "box": {
     "id": "range",
     "maxclass": "umenu",
     "numinlets": 1,
     "numoutlets": 3,
     "patching_rect": [
      320,
      130,
      60,
      22
     ],
     "outlettype": [
      "int",
      "",
      ""
     ],
     "items": [
      "2",
      ",",
      "5",
      ",",
      "10"
     ]
    }
   },
   {
    "box": {
     "id": "rsel",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 4,
     "patching_rect": [
      320,
      160,
      80,
      22
     ],
     "text": "sel 0 1 2",
     "outlettype": [
      "",
      "",
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "r2",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      320,
      186,
      30,
      22
     ],
     "text": "2.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "r5",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      355,
      186,
      30,
      22
     ],
     "text": "5.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "r10",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      390,
      186,
      34,
      22
     ],
     "text": "10.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "pak",
     "maxclass": "newobj",
     "numinlets": 5,
     "numoutlets": 1,
     "patching_rect": [
      20,
      260,
      240,
      22
     ],
     "text": "pak kick 0. 0. 0. 2.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "fmt",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      20,
      290,
      360,
      22
     ],
     "text": "/play $1 $2 $3 $4 range $5",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "send",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      330,
      160,
      22
     ],
     "text": "udpsend 127.0.0.1 9000"
    }
   },
   {
    "box": {
     "id": "recv",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      380,
      110,
      22
     ],
     "text": "udpreceive 9001",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "route",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 4,
     "patching_rect": [
      20,
      410,
      200,
      22
     ],
     "text": "route /sound /error /encoded",
     "outlettype": [
      "",
      "",
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "slice",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      20,
      440,
      70,
      22
     ],
     "text": "zl slice 1",
     "outlettype": [
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "repl",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      470,
      100,
      22
     ],
     "text": "prepend replace",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "buf",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      20,
      500,
      140,
      22
     ],
     "text": "buffer~ nd-sample",
     "outlettype": [
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "perr",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      130,
      440,
      130,
      22
     ],
     "text": "print neuraldrum-error"
    }
   },
   {
    "box": {
     "id": "penc",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      270,
      440,
      140,
      22
     ],
     "text": "print neuraldrum-encoded"
    }
   },
   {
    "box": {
     "id": "c_prev",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      440,
      300,
      80,
      20
     ],
     "text": "preview"
    }
   },
   {
    "box": {
     "id": "btn",
     "maxclass": "button",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      440,
      320,
      30,
      30
     ],
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "start",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      440,
      360,
      40,
      22
     ],
     "text": "start",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "play",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      440,
      390,
      120,
      22
     ],
     "text": "play~ nd-sample",
     "outlettype": [
      "signal",
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "dac",
     "maxclass": "ezdac~",
     "numinlets": 2,
     "numoutlets": 0,
     "patching_rect": [
      440,
      430,
      45,
      45
     ]
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "source": [
      "lb",
      0
     ],
     "destination": [
      "dl",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "dl",
      0
     ],
     "destination": [
      "reply",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "reply",
      0
     ],
     "destination": [
      "send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "menu",
      1
     ],
     "destination": [
      "pak",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "pad",
      0
     ],
     "destination": [
      "sx",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "pad",
      1
     ],
     "destination": [
      "sy",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "sx",
      0
     ],
     "destination": [
      "pak",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "sy",
      0
     ],
     "destination": [
      "pak",
      2
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "fine",
      0
     ],
     "destination": [
      "sf",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "sf",
      0
     ],
     "destination": [
      "pak",
      3
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "range",
      0
     ],
     "destination": [
      "rsel",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "rsel",
      0
     ],
     "destination": [
      "r2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "rsel",
      1
     ],
     "destination": [
      "r5",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "rsel",
      2
     ],
     "destination": [
      "r10",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "r2",
      0
     ],
     "destination": [
      "pak",
      4
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "r5",
      0
     ],
     "destination": [
      "pak",
      4
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "r10",
      0
     ],
     "destination": [
      "pak",
      4
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "pak",
      0
     ],
     "destination": [
      "fmt",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "fmt",
      0
     ],
     "destination": [
      "send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "recv",
      0
     ],
     "destination": [
      "route",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "route",
      0
     ],
     "destination": [
      "slice",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "slice",
      0
     ],
     "destination": [
      "repl",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "repl",
      0
     ],
     "destination": [
      "buf",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "route",
      1
     ],
     "destination": [
      "perr",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "route",
      2
     ],
     "destination": [
      "penc",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "btn",
      0
     ],
     "destination": [
      "start",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "start",
      0
     ],
     "destination": [
      "play",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "play",
      0
     ],
     "destination": [
      "dac",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "play",
      0
     ],
     "destination": [
      "dac",
      1
     ]
    }
   }
  ]
 }
}
