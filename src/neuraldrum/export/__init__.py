"""What neuraldrum writes for other tools: kits for samplers and drum machines (:mod:`.kits`, which writes the
SFZ instrument of :mod:`.sfz` and the Hydrogen drum kit of :mod:`.hydrogen` beside a kit's WAVs), and the
model exports (:mod:`.models`)."""
