import time, uuid
from datetime import UTC, datetime
from sqlalchemy import event
from benchmarks.synthetic import CatalogProfile
from model_sync.transform import normalize_models, FRAME_COLUMNS
from model_sync.store.database import engine_for, sqlalchemy_url
from model_sync.store.sync import SyncRequest, sync_catalog, _copy_value
eng=engine_for(sqlalchemy_url("postgresql://postgres@127.0.0.1:5432/model_sync_bench"))
p=CatalogProfile.from_fixture()
raw=p.generate(100000, seed=42)
fr=normalize_models(raw).frame
t=time.perf_counter()
rows=[[_copy_value(c,v) for c,v in zip(FRAME_COLUMNS,r,strict=True)] for r in fr.itertuples(index=False,name=None)]
print("python row building", time.perf_counter()-t)
log=[]
@event.listens_for(eng, "before_cursor_execute")
def b(conn, cur, stmt, params, ctx, many):
    conn.info["t0"]=time.perf_counter()
@event.listens_for(eng, "after_cursor_execute")
def a(conn, cur, stmt, params, ctx, many):
    log.append((time.perf_counter()-conn.info["t0"], " ".join(stmt.split())[:90], conn.info["t0"]))
t=time.perf_counter(); r=sync_catalog(eng, SyncRequest(frame=fr, source="vercel", run_id=str(uuid.uuid4())), datetime.now(UTC)); tot=time.perf_counter()-t
print(tot, r.counts)
prev=t
for d,s,t0 in log:
    print(f"{t0-prev:7.3f} gap  {d:7.3f}  {s}")
    prev=t0+d
