"""The service's tables, as tglib's documentation defines them (SQLAlchemy 1.3)."""

from sqlalchemy import JSON, Column, DateTime, Integer, String
from sqlalchemy.ext.declarative import declarative_base

Base = declarative_base()


class Topology(Base):
    __tablename__ = "topology"

    id = Column(Integer, primary_key=True)
    network_name = Column(String(255), nullable=False)
    topology = Column(JSON, nullable=False)
    last_updated = Column(DateTime, nullable=False)
