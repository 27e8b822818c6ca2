"""Write a small ROOT file with the on-disk layout of Delphes output, from an LHE file of our generator.

Why: the Delphes reader fix (``compat.delphes``) must be tested on a file whose branches are laid out as
Delphes writes them (a ``Delphes`` tree of split ``TClonesArray`` branches ``Jet.PT``, ``Photon.E``, ...
with ``Jet_size`` counters), and Delphes itself (it needs ROOT and a detector card) cannot run in CI.
This script needs ROOT's Python bindings (``pip install root``, a 250 MB wheel) and is run once by hand;
its outputs are committed:

    python tests/data/make_delphes_fixture.py EVENTS.lhe.gz tests/data/delphes

writes ``delphes/events.root`` (jets = the outgoing quarks, photons = the photons, with a simple
Gaussian smearing) and ``delphes/truth.npz`` with the exact float32 values written, which the test
compares MadMiner's observables against. Classes and branch names follow Delphes's DelphesClasses.h for
the members MadMiner reads; the values are not a detector simulation.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import ROOT

CLASSES = r"""
#include "TObject.h"
class Event : public TObject { public: Long64_t Number = 0; Float_t ReadTime = 0, ProcTime = 0;
  Int_t ProcessID = 0; Float_t Weight = 0, ScalePDF = 0, AlphaQED = 0, AlphaQCD = 0; ClassDef(Event, 1) };
class Weight : public TObject { public: Float_t Weight = 0; ClassDef(Weight, 1) };
class Photon : public TObject { public: Float_t PT = 0, Eta = 0, Phi = 0, E = 0, T = 0, EhadOverEem = 0;
  ClassDef(Photon, 1) };
class Jet : public TObject { public: Float_t PT = 0, Eta = 0, Phi = 0, T = 0, Mass = 0, DeltaEta = 0,
  DeltaPhi = 0; UInt_t Flavor = 0, BTag = 0, TauTag = 0; Int_t Charge = 0; ClassDef(Jet, 1) };
class Electron : public TObject { public: Float_t PT = 0, Eta = 0, Phi = 0, T = 0; Int_t Charge = 0;
  ClassDef(Electron, 1) };
class Muon : public TObject { public: Float_t PT = 0, Eta = 0, Phi = 0, T = 0; Int_t Charge = 0;
  ClassDef(Muon, 1) };
class MissingET : public TObject { public: Float_t MET = 0, Eta = 0, Phi = 0; ClassDef(MissingET, 1) };
"""


def read_events(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pdg ids, momenta E px py pz) of the final-state particles of every event."""
    ids, moms = [], []
    with gzip.open(path, "rt") as f:
        body = f.read().split("<event>")[1:]
    for chunk in body:
        lines = chunk.strip().splitlines()
        nup = int(lines[0].split()[0])
        rows = [line.split() for line in lines[1 : 1 + nup] if line.split()[1] == "1"]
        ids.append([int(r[0]) for r in rows])
        moms.append([[float(r[9]), float(r[6]), float(r[7]), float(r[8])] for r in rows])
    return np.array(ids), np.array(moms)


def main(lhe: Path, out: Path) -> None:
    ROOT.gInterpreter.Declare(CLASSES)
    ids, p = read_events(lhe)
    rng = np.random.default_rng(20261125)
    pt = np.hypot(p[..., 1], p[..., 2])
    eta = np.arcsinh(p[..., 3] / pt)
    phi = np.arctan2(p[..., 2], p[..., 1])
    is_photon = ids == 22
    pt = pt * (1 + np.where(is_photon, 0.02, 0.1) * rng.standard_normal(pt.shape))
    eta = eta + np.where(is_photon, 0.01, 0.1) * rng.standard_normal(eta.shape)
    pt, eta, phi = (a.astype(np.float32) for a in (pt, eta, phi))
    energy = (pt * np.cosh(eta)).astype(np.float32)

    out.mkdir(parents=True, exist_ok=True)
    f = ROOT.TFile(str(out / "events.root"), "RECREATE")
    tree = ROOT.TTree("Delphes", "Analysis tree")
    arrays = {
        name: ROOT.TClonesArray(name) for name in ("Event", "Weight", "Photon", "Jet", "Electron", "Muon", "MissingET")
    }
    for name, array in arrays.items():
        tree.Branch(name, array, 64000, 99)
    truth: dict[str, list] = {
        k: [] for k in ("jet_pt", "jet_eta", "jet_phi", "photon_pt", "photon_eta", "photon_phi", "photon_e")
    }
    for i in range(len(ids)):
        for array in arrays.values():
            array.Clear()
        event = arrays["Event"].ConstructedAt(0)
        event.Number = i
        event.Weight = 1.0
        arrays["Weight"].ConstructedAt(0).Weight = 1.0
        for kind, mask in (("jet", ~is_photon[i]), ("photon", is_photon[i])):
            order = np.argsort(-pt[i][mask])  # Delphes sorts every collection by pT
            for j, k in enumerate(np.flatnonzero(mask)[order]):
                obj = arrays["Jet" if kind == "jet" else "Photon"].ConstructedAt(j)
                obj.PT, obj.Eta, obj.Phi = float(pt[i, k]), float(eta[i, k]), float(phi[i, k])
                if kind == "photon":
                    obj.E = float(energy[i, k])
                truth[f"{kind}_pt"].append(pt[i, k])
                truth[f"{kind}_eta"].append(eta[i, k])
                truth[f"{kind}_phi"].append(phi[i, k])
                if kind == "photon":
                    truth["photon_e"].append(energy[i, k])
        met = arrays["MissingET"].ConstructedAt(0)
        met.MET, met.Phi = 0.0, 0.0
        tree.Fill()
    tree.Write()
    f.Close()
    n = len(ids)
    np.savez(out / "truth.npz", **{k: np.array(v, dtype=np.float32).reshape(n, 2) for k, v in truth.items()})
    print(f"wrote {n} events to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
