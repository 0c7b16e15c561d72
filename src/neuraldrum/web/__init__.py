"""The instrument in the browser: ``neuraldrum serve`` (see :mod:`neuraldrum.web.server`)."""
