"""Procedural articulated scenes with exact ground truth, rendered by a numpy mesh renderer.

  scene.py     generate_scene(cfg) -> SceneBundle; Scene / MeshPart (add a posed human with Scene.with_part)
  objects.py   door, drawer, fridge, lid, two-door cabinet and the room, built from boxes
  raster.py    z-buffer triangle rasterization at pixel centres and ray casting (never the Gaussian rasterizer)
  textures.py  solid procedural textures evaluated in each part's own frame
  tracks.py    ground-truth point tracks: anchors on faces, exact projection, occlusion by ray casting
  motion.py    joint profiles, joint transforms, look-at cameras
  mesh.py      boxes, rectangles, merging
"""
