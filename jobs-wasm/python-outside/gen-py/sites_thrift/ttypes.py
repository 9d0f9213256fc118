"""Test fixture: Thrift types in the style of Thrift's Python generator (written by hand
for these tests): a site, its kind."""

from thrift.Thrift import TType


class SiteType:
    POP = 1
    CN = 2

    _VALUES_TO_NAMES = {1: "POP", 2: "CN"}
    _NAMES_TO_VALUES = {"POP": 1, "CN": 2}


class Site:
    """
    Attributes:
     - name
     - latitude
     - longitude
     - site_type
    """

    thrift_spec = (
        None,
        (1, TType.STRING, "name", "UTF8", None),
        (2, TType.DOUBLE, "latitude", None, None),
        (3, TType.DOUBLE, "longitude", None, None),
        (4, TType.I32, "site_type", None, None),
    )

    def __init__(self, name=None, latitude=None, longitude=None, site_type=None):
        self.name = name
        self.latitude = latitude
        self.longitude = longitude
        self.site_type = site_type

    def read(self, iprot):
        iprot.readStructBegin()
        while True:
            (_, ftype, fid) = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 1 and ftype == TType.STRING:
                self.name = iprot.readString()
            elif fid == 2 and ftype == TType.DOUBLE:
                self.latitude = iprot.readDouble()
            elif fid == 3 and ftype == TType.DOUBLE:
                self.longitude = iprot.readDouble()
            elif fid == 4 and ftype == TType.I32:
                self.site_type = iprot.readI32()
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()

    def write(self, oprot):
        oprot.writeStructBegin("Site")
        for fid, ftype, name, _, _ in self.thrift_spec[1:]:
            value = getattr(self, name)
            if value is None:
                continue
            oprot.writeFieldBegin(name, ftype, fid)
            if ftype == TType.STRING:
                oprot.writeString(value)
            elif ftype == TType.DOUBLE:
                oprot.writeDouble(value)
            else:
                oprot.writeI32(value)
            oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Site({fields})"

    def __eq__(self, other):
        return isinstance(other, Site) and self.__dict__ == other.__dict__
