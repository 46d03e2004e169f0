"""Media bytes: uploads, URL fetches, base64, downloads of incoming media; content-addressed
storage under ``$DATA_DIR/media/``, MIME detection, ffmpeg conversion, signed URLs (CONTRACT §11).

The message seam (OutgoingMessage, IncomingMessage.media) belongs to the drivers; this package
only prepares and keeps the bytes those messages carry.
"""
