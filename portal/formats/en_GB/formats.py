"""The portal's one date format: "30 Nov 2026" and "30 Nov 2026, 14:05" on every page (templates use
``|date:"DATE_FORMAT"`` or ``|date:"DATETIME_FORMAT"``, and unfiltered dates take these too)."""

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
