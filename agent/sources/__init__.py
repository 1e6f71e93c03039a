"""Sources: the plain-file CRM folder and survey files, read into core values."""
