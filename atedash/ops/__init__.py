"""Operations toolkit pages: consistency check with repairs, backup download, audit trail, /metrics."""
