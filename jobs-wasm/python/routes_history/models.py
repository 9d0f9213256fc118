"""The fixture service's table (SQLAlchemy 1.3, as tgnms' services declare theirs)."""

from typing import Any

from sqlalchemy import Column, DateTime, Integer, String
from sqlalchemy.ext.declarative import declarative_base

Base: Any = declarative_base()


class RoutesHistory(Base):
    __tablename__ = "routes_history"

    id = Column(Integer, primary_key=True)
    network_name = Column(String(100), index=True, nullable=False)
    node_name = Column(String(100), index=True, nullable=False)
    hops = Column(Integer, nullable=False)
    last_updated = Column(DateTime, nullable=False)
